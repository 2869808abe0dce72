"""Database helpers the export tests share."""

from __future__ import annotations

from medallion.databases import dialect_for
from medallion.local.throwaway_servers import DatabaseServer


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
