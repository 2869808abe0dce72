"""Seeded, vectorised data generators (numpy, pydantic, pyyaml only: no Spark, no JVM)."""
