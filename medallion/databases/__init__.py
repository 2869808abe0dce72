"""Database servers and connections for the export: throwaway or configured, never leaking secrets.

- `PostgresServer`, `MariaDBServer`: throwaway servers (context managers or start()/stop()).
- `Connection`: host, port, database, user, JDBC URL and driver; the password is a `Secret`.
- `open_connections` / `resolve_connections`: pick external or throwaway servers per target.
- `connect`, `run_sql`, `count_rows`: run SQL with psycopg 3 / PyMySQL.
- `find_postgres`, `find_mariadb`: locate the OS-packaged binaries.

Nothing here imports Spark.
"""

from __future__ import annotations

from medallion.databases.binaries import find_mariadb, find_postgres
from medallion.databases.connection import Connection, Secret, external_connection, parse_url
from medallion.databases.dialects import LEDGER_TABLE, check_identifier, dialect_for
from medallion.databases.servers import (
    DatabaseServer,
    MariaDBServer,
    PostgresServer,
    start_server,
)
from medallion.databases.sql import SqlSession, connect, count_rows, run_sql
from medallion.databases.targets import open_connections, resolve_connections
from medallion.ports import free_port

__all__ = [
    "LEDGER_TABLE",
    "Connection",
    "DatabaseServer",
    "MariaDBServer",
    "PostgresServer",
    "Secret",
    "SqlSession",
    "check_identifier",
    "connect",
    "count_rows",
    "dialect_for",
    "external_connection",
    "find_mariadb",
    "find_postgres",
    "free_port",
    "open_connections",
    "parse_url",
    "resolve_connections",
    "run_sql",
    "start_server",
]
