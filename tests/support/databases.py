"""Database helpers the export tests share."""

from __future__ import annotations

from medallion.databases import dialect_for
from medallion.local.throwaway_servers import DatabaseServer


def reset_database(server: DatabaseServer) -> None:
    """Drop every view and table in the server's export database (as the superuser), so tests
    start empty; served tables reference each other (FOREIGN KEYs) and views read them."""
    dialect = dialect_for(server.kind)
    with server.sql(admin=True) as admin:
        if server.kind == "postgres":
            views = admin.query("SELECT viewname FROM pg_views WHERE schemaname = 'public'")
            tables = admin.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            for (name,) in views:
                admin.execute(f"DROP VIEW IF EXISTS {dialect.quote(name)} CASCADE")
            for (name,) in tables:
                admin.execute(f"DROP TABLE IF EXISTS {dialect.quote(name)} CASCADE")
            return
        listed = admin.query(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %s",
            [server.database],
        )
        admin.execute("SET FOREIGN_KEY_CHECKS = 0")  # this session only: drop parents before children
        for name, kind in listed:
            what = "VIEW" if kind == "VIEW" else "TABLE"
            admin.execute(f"DROP {what} IF EXISTS {dialect.quote(name)}")
        admin.execute("SET FOREIGN_KEY_CHECKS = 1")
