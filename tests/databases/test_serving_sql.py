"""Served silver entities in the databases: FOREIGN KEYs, the orphan filter of the upsert, and
the catalogue views, on real PostgreSQL and MariaDB (no Spark)."""

from __future__ import annotations

import pytest

from medallion.contracts.errors import DatabaseError, IdentifierError
from medallion.databases import Connection, dialect_for
from medallion.databases.dialects import OP_COLUMN, ForeignKey, MySQLDialect, PostgresDialect
from medallion.databases.sql import connect, run_sql
from medallion.databases.views import orphan_select, view_select

USERS = [("user_id", "string"), ("name", "string")]
ORDERS = [("order_id", "string"), ("user_id", "string"), ("amount", "double")]
FK = ForeignKey("user_id", "users", "user_id")


def test_ddl_declares_primary_and_foreign_keys_and_types_foreign_keys_like_keys() -> None:
    pg = PostgresDialect().create_table("orders", ORDERS, ["order_id"], foreign_keys=[FK])
    assert 'FOREIGN KEY ("user_id") REFERENCES "users" ("user_id")' in pg and 'PRIMARY KEY ("order_id")' in pg
    my = MySQLDialect().create_table("orders", ORDERS, ["order_id"], foreign_keys=[FK])
    # MySQL cannot index TEXT: a foreign key column is VARCHAR(255) like the key it points at.
    assert "`user_id` VARCHAR(255)," in my and "FOREIGN KEY (`user_id`) REFERENCES `users` (`user_id`)" in my
    with pytest.raises(IdentifierError):
        PostgresDialect().create_table("orders", ORDERS, ["order_id"], foreign_keys=[ForeignKey("shop_id", "users", "user_id")])
    with pytest.raises(IdentifierError):
        PostgresDialect().create_table("orders", ORDERS, ["order_id"], foreign_keys=[ForeignKey("user_id", 'u"; --', "user_id")])
    with pytest.raises(IdentifierError):
        view_select(PostgresDialect(), "drop_everything")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_orphans_are_withheld_and_counted_and_the_orphan_view_stays_empty(
    export_connections: dict[str, Connection], kind: str
) -> None:
    connection = export_connections[kind]
    dialect = dialect_for(kind)
    with connect(connection) as session:
        session.execute(dialect.create_table("users", USERS, ["user_id"]))
        session.execute(dialect.create_table("orders", ORDERS, ["order_id"], foreign_keys=[FK]))
        session.execute(dialect.create_staging("_medallion_stage_orders", ORDERS))
        session.execute("INSERT INTO users (user_id, name) VALUES ('u1', 'Ann')")
        insert = dialect.insert_row("_medallion_stage_orders", ["order_id", "user_id", "amount", OP_COLUMN])
        for row in [("o1", "u1", 5.0, "U"), ("o2", "u9", 7.0, "U"), ("o2", "u9", 7.0, "U"), ("o3", None, 1.0, "U")]:
            session.execute(insert, row)
        with session.transaction():
            orphans = session.scalar(dialect.orphan_keys("_medallion_stage_orders", ["order_id"], [FK]))
            session.execute(dialect.upsert("orders", "_medallion_stage_orders", ["order_id", "user_id", "amount"], ["order_id"], [FK]))
        assert orphans == 1  # o2 names a user nobody served (counted once, though staged twice)
        assert sorted(session.query("SELECT order_id FROM orders")) == [("o1",), ("o3",)]
        session.execute(dialect.create_view("orphaned_rows", orphan_select(dialect, [("orders", "order_id", [FK])])))
        assert session.query("SELECT * FROM orphaned_rows") == []
    # The database itself refuses an orphan: the FOREIGN KEY is real.
    with pytest.raises(DatabaseError):
        run_sql(connection, "INSERT INTO orders (order_id, user_id, amount) VALUES ('o4', 'u9', 1.0)")
