"""Helpers shared by the test packages (unit, spark, integration)."""
