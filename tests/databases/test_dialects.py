"""The SQL each target kind gets (pure string building: no driver, no server)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medallion.contracts.errors import DatabaseError, IdentifierError
from medallion.databases.dialects import (
    LEDGER_TABLE,
    Dialect,
    LedgerEntry,
    MySQLDialect,
    PostgresDialect,
    dialect_for,
    export_lock_name,
    staging_table,
)

POSTGRES, MYSQL = dialect_for("postgres"), dialect_for("mysql")
ENTRY = LedgerEntry("trips", "id-1", 7, 5, "changes", 3, 1, datetime(2026, 1, 5, 6, 0, tzinfo=UTC))


def test_each_kind_has_its_dialect_and_the_base_is_abstract() -> None:
    assert isinstance(POSTGRES, PostgresDialect) and isinstance(MYSQL, MySQLDialect)
    with pytest.raises(DatabaseError, match="unknown database kind 'oracle'"):
        dialect_for("oracle")
    with pytest.raises(TypeError):
        Dialect()  # type: ignore[abstract]


def test_names_are_checked_and_quoted_per_kind() -> None:
    assert POSTGRES.quote("trips") == '"trips"' and MYSQL.quote("trips") == "`trips`"
    assert POSTGRES.quote(LEDGER_TABLE) == '"_medallion_exports"'
    for evil in ('a"; DROP TABLE x; --', "Trips", "a`b", "trips\n"):
        with pytest.raises(IdentifierError):
            MYSQL.quote(evil)


def test_staging_table_has_both_kinds_columns_and_no_key() -> None:
    columns = [("company_id", "string"), ("events", "bigint"), ("avg", "decimal(10,2)")]
    # Unlogged on PostgreSQL: staged rows live until the commit, so they skip the WAL.
    assert POSTGRES.create_staging("_medallion_stage_t", columns) == (
        'CREATE UNLOGGED TABLE IF NOT EXISTS "_medallion_stage_t" (\n  "company_id" text,\n  "events" bigint,\n'
        '  "avg" numeric(10,2),\n  "_op" char(1) NOT NULL\n)'
    )
    assert POSTGRES.create_table("t", columns, ["company_id"]).startswith('CREATE TABLE IF NOT EXISTS "t"')
    mysql = MYSQL.create_staging("_medallion_stage_t", columns)
    assert mysql.startswith("CREATE TABLE IF NOT EXISTS `_medallion_stage_t`")
    assert "`company_id` TEXT" in mysql and "`_op` CHAR(1) NOT NULL" in mysql and "PRIMARY KEY" not in mysql
    assert mysql.endswith("COLLATE=utf8mb4_bin")
    # A MySQL key column cannot be TEXT.
    assert "`company_id` VARCHAR(255) NOT NULL" in MYSQL.create_table("t", columns, ["company_id"])


def test_bulk_loads_name_every_column_and_check_every_name() -> None:
    assert POSTGRES.copy_from_stdin("_medallion_stage_t", ["company_id", "_op"]) == (
        'COPY "_medallion_stage_t" ("company_id", "_op") FROM STDIN (FORMAT csv)'
    )
    assert POSTGRES.copy_from_stdin("t", ["a"], "text") == 'COPY "t" ("a") FROM STDIN (FORMAT text)'
    with pytest.raises(DatabaseError, match="unknown COPY format"):
        POSTGRES.copy_from_stdin("t", ["a"], "binary; DROP TABLE t")
    assert MYSQL.insert_row("_medallion_stage_t", ["company_id", "events", "_op"]) == (
        "INSERT INTO `_medallion_stage_t` (`company_id`, `events`, `_op`) VALUES (%s, %s, %s)"
    )
    for evil in ('a"b', "a`b"):
        with pytest.raises(IdentifierError):
            POSTGRES.copy_from_stdin("t", [evil])
        with pytest.raises(IdentifierError):
            MYSQL.insert_row(evil, ["a"])


def test_staging_goes_with_the_commit_where_ddl_is_transactional() -> None:
    assert POSTGRES.discard_staging("_medallion_stage_t") == 'DROP TABLE IF EXISTS "_medallion_stage_t"'
    assert POSTGRES.after_commit("_medallion_stage_t") is None
    # MySQL would commit implicitly on DDL: rows are deleted inside, the table dropped after.
    assert MYSQL.discard_staging("_medallion_stage_t") == "DELETE FROM `_medallion_stage_t`"
    assert MYSQL.after_commit("_medallion_stage_t") == "DROP TABLE IF EXISTS `_medallion_stage_t`"


def test_ledger_row_binds_every_value_and_mysql_stores_the_utc_wall_clock() -> None:
    sql, params = POSTGRES.insert_ledger(ENTRY)
    assert sql.startswith('INSERT INTO "_medallion_exports" (table_name, delta_table_id, delta_version')
    assert sql.count("%s") == len(params) == 8
    assert params == ("trips", "id-1", 7, 5, "changes", 3, 1, datetime(2026, 1, 5, 6, 0, tzinfo=UTC))
    assert MYSQL.insert_ledger(ENTRY).params[-1] == datetime(2026, 1, 5, 6, 0)
    assert MYSQL.last_export("trips").params == ("trips",)


def test_statements_with_values_never_inline_them() -> None:
    name = export_lock_name("medallion")
    assert name == "medallion_export.medallion"
    assert len(export_lock_name("d" * 100)) == 64
    assert POSTGRES.try_lock(name) == ("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))
    assert MYSQL.try_lock(name) == ("SELECT GET_LOCK(%s, 0) = 1", (name,))
    assert MYSQL.unlock(name).params == POSTGRES.unlock(name).params == (name,)
    assert POSTGRES.columns_of("trips").params == ("trips",) and "current_schema()" in POSTGRES.columns_of("trips").sql
    assert "DATABASE()" in MYSQL.columns_of("trips").sql


def test_upserts_tolerate_duplicate_staged_rows() -> None:
    pg = POSTGRES.upsert("t", "_medallion_stage_t", ["k", "v"], ["k"])
    assert 'SELECT DISTINCT ON ("k")' in pg and 'ON CONFLICT ("k") DO UPDATE SET "v" = EXCLUDED."v"' in pg
    assert POSTGRES.upsert("t", "_medallion_stage_t", ["k"], ["k"]).endswith("DO NOTHING")
    my = MYSQL.upsert("t", "_medallion_stage_t", ["k", "v"], ["k"])
    assert my.endswith("ON DUPLICATE KEY UPDATE `v` = s.`v`")


def test_staging_names_fit_both_kinds() -> None:
    assert staging_table("trips") == "_medallion_stage_trips"
    long_name = staging_table("t" * 63)
    assert len(long_name) == 63 and long_name != staging_table("t" * 62 + "u")
