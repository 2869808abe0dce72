"""Shared fixtures, each started at most once per test session and only when a test asks for it:

- `spark`: one SparkSession (local[2], UTC, UI off, 2 shuffle partitions).
- `postgres_server`, `mariadb_server`: one throwaway server each (database/user `medallion`).
- `export_connections`: export-user connections to both, their databases emptied first.

The servers are real (medallion.local), each started in about a second; the export user's
connection is `server.connection`, the superuser's (Unix socket) is `server.admin`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medallion.databases import Connection
from medallion.local import MariaDBServer, PostgresServer
from tests.support.databases import reset_database


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """The one SparkSession of the test run, built by spark_jobs.session like production."""
    from spark_jobs.session import SessionOptions, build_session

    session = build_session(
        SessionOptions(app_name="medallion-tests", master="local[2]", shuffle_partitions=2, ui=False)
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole test session (database/user `medallion`)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """A throwaway MariaDB server for the whole test session (database/user `medallion`)."""
    with MariaDBServer() as server:
        yield server



@pytest.fixture
def export_connections(postgres_server: PostgresServer, mariadb_server: MariaDBServer) -> dict[str, Connection]:
    """Export-user connections to both session servers, keyed like `ExportConfig.targets`,
    with their databases emptied before the test."""
    reset_database(postgres_server)
    reset_database(mariadb_server)
    return {"postgres": postgres_server.connection, "mysql": mariadb_server.connection}
