"""Database connections for the export, never leaking secrets.

- `Connection`: host, port, database, user, JDBC URL and driver; the password is a `Secret`.
- `resolve_connections`: the configured server of each export target.
- `Dialect` / `dialect_for`: every SQL difference between PostgreSQL and MySQL/MariaDB.
- `connect`, `run_sql`, `count_rows`: run SQL with psycopg 3 / PyMySQL.

Throwaway servers for local runs and tests live in `medallion.local`. Nothing here imports Spark.
"""

from __future__ import annotations

from medallion.databases.connection import Connection, Secret, external_connection, parse_url
from medallion.databases.dialects import LEDGER_TABLE, check_identifier, dialect_for
from medallion.databases.sql import SqlSession, connect, count_rows, run_sql
from medallion.databases.targets import resolve_connections

__all__ = [
    "LEDGER_TABLE",
    "Connection",
    "Secret",
    "SqlSession",
    "check_identifier",
    "connect",
    "count_rows",
    "dialect_for",
    "external_connection",
    "parse_url",
    "resolve_connections",
    "run_sql",
]
