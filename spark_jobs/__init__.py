"""Spark structured-streaming jobs: bronze, silver, gold and export, one module each."""
