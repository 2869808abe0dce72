"""Shared fixtures: one SparkSession per test session (local[2], UTC, UI off, 2 shuffle partitions)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """The one SparkSession of the test run, built by spark_jobs.session like production."""
    from spark_jobs.session import SessionOptions, build_session

    session = build_session(
        SessionOptions(app_name="medallion-tests", master="local[2]", shuffle_partitions=2, ui=False)
    )
    yield session
    session.stop()
