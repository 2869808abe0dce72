"""Shared integration fixtures: one throwaway PostgreSQL and one MariaDB server per test session.

    def test_something(postgres_server, mariadb_server): ...
    def test_export(export_connections): ...   # both servers, their databases emptied first

The servers are real (medallion.databases), each started in about a second; the export user's
connection is `server.connection`, the superuser's (Unix socket) is `server.admin`. The Spark
session fixture `spark` lives in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medallion.databases import Connection, dialect_for
from medallion.local import MariaDBServer, PostgresServer
from medallion.local.throwaway_servers import DatabaseServer


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


def reset_database(server: DatabaseServer) -> None:
    """Drop every table in the server's export database (as the superuser), so tests start empty."""
    dialect = dialect_for(server.kind)
    with server.sql(admin=True) as admin:
        if server.kind == "postgres":
            tables = admin.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        else:
            tables = admin.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                [server.database],
            )
        for (name,) in tables:
            admin.execute(f"DROP TABLE IF EXISTS {dialect.quote(name)}")


@pytest.fixture
def export_connections(postgres_server: PostgresServer, mariadb_server: MariaDBServer) -> dict[str, Connection]:
    """Export-user connections to both session servers, keyed like `ExportConfig.targets`,
    with their databases emptied before the test."""
    reset_database(postgres_server)
    reset_database(mariadb_server)
    return {"postgres": postgres_server.connection, "mysql": mariadb_server.connection}
