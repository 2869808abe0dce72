"""Export gold Delta tables into real PostgreSQL and MariaDB servers, exactly once.

The gold tables are built here with Delta MERGEs in the shape the gold job writes (group keys,
window_start/window_end, metrics; change data feed on), so these tests do not need the
pipeline. Crashes are injected through ExportHooks, which run at fixed points of the real path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.errors import ConfigError, DatabaseError, ExportError, IdentifierError
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario import GoldTable
from medallion.databases import (
    LEDGER_TABLE,
    Connection,
    connect,
    run_sql,
)
from medallion.databases.dialects import dialect_for, staging_table
from medallion.local import MariaDBServer, PostgresServer
from spark_jobs import export
from spark_jobs.config import ExportConfig, export_config
from spark_jobs.export import ExportHooks, ExportStep
from spark_jobs.session import SessionOptions, session_config

pytestmark = [pytest.mark.integration, pytest.mark.spark]

TABLE = "company_activity_15m"
SCHEMA = (
    "company_id string, window_start timestamp, window_end timestamp, events bigint, "
    "start_driving bigint, stopped_driving bigint, delivered bigint, active_drivers bigint, "
    "avg_speed_kmh double, p95_speed_kmh double"
)
COLUMNS = [part.split()[0] for part in SCHEMA.split(", ")]
TIMESTAMPS = {"window_start", "window_end"}


def w(hour: int, minute: int) -> datetime:
    return datetime(2026, 1, 5, hour, minute)


def row(company: str, hour: int, minute: int, events: int, avg: float) -> tuple[Any, ...]:
    end_minute = (minute + 15) % 60
    end_hour = hour + (minute + 15) // 60
    return (company, w(hour, minute), w(end_hour, end_minute), events, events // 2, events // 3,
            events - events // 2 - events // 3, min(events, 3), avg, avg + 20.25)


FIRST = [row("c-00001", 8, 0, 5, 50.5), row("c-00002", 8, 0, 3, 40.0), row("C-00001", 8, 0, 7, 45.25)]


@pytest.fixture
def cfg(tmp_path: Path) -> ExportConfig:
    """The driving scenario on an empty data root."""
    return export_config("driving", DataRoot(tmp_path / "data"))


def merge_gold(spark: SparkSession, cfg: ExportConfig, rows: list[tuple[Any, ...]]) -> None:
    """Upsert rows into the gold table by its key, as the gold job does (one Delta version)."""
    path = cfg.table("gold", TABLE)
    source = spark.createDataFrame(rows, SCHEMA)
    (DeltaTable.createIfNotExists(spark).location(path).addColumns(source.schema)
     .property("delta.enableChangeDataFeed", "true").execute())
    (DeltaTable.forPath(spark, path).alias("t")
     .merge(source.alias("s"), "t.company_id = s.company_id AND t.window_start = s.window_start")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())


def gold_rows(spark: SparkSession, cfg: ExportConfig) -> list[tuple[Any, ...]]:
    """The gold table's rows, timestamps as naive UTC datetimes (session time zone is UTC)."""
    df = spark.read.format("delta").load(cfg.table("gold", TABLE))
    selected = [F.date_format(c, "yyyy-MM-dd HH:mm:ss").alias(c) if c in TIMESTAMPS else F.col(c) for c in COLUMNS]
    return sorted(
        tuple(datetime.fromisoformat(v) if c in TIMESTAMPS else v for c, v in zip(COLUMNS, r, strict=True))
        for r in df.select(*selected).collect()
    )


def naive_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def db_rows(connection: Connection, table: str = TABLE) -> list[tuple[Any, ...]]:
    q = dialect_for(connection.kind).quote
    rows = run_sql(connection, f"SELECT {', '.join(q(c) for c in COLUMNS)} FROM {q(table)}")
    return sorted(tuple(naive_utc(v) for v in r) for r in rows)


def ledger(connection: Connection) -> list[tuple[Any, ...]]:
    return run_sql(
        connection,
        f"SELECT table_name, delta_version, from_version, mode, rows_upserted, rows_deleted "
        f"FROM {dialect_for(connection.kind).quote(LEDGER_TABLE)} ORDER BY export_id",
    )


def tables_in(connection: Connection) -> set[str]:
    if connection.kind == "postgres":
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    return {r[0] for r in run_sql(connection, sql)}


def by_target(results: list[export.ExportResult]) -> dict[str, export.ExportResult]:
    return {r.target: r for r in results}


def test_export_twice_leaves_the_same_rows_in_both_databases(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    merge_gold(spark, cfg, FIRST)
    merge_gold(spark, cfg, [row("c-00001", 8, 0, 6, 51.5), row("c-00003", 8, 15, 1, 10.0)])
    expected = gold_rows(spark, cfg)
    assert len(expected) == 4

    first = by_target(export.export_gold(spark, cfg, export_connections))
    assert {r.mode for r in first.values()} == {"snapshot"} and {r.delta_version for r in first.values()} == {2}
    assert all(r.rows_upserted == 4 for r in first.values())
    second = by_target(export.export_gold(spark, cfg, export_connections))
    assert {r.mode for r in second.values()} == {"skipped"}

    for connection in export_connections.values():
        # Keys differing only in case stay apart (binary collation on MariaDB).
        assert db_rows(connection) == expected
        q = dialect_for(connection.kind).quote
        distinct = run_sql(connection, f"SELECT COUNT(*) FROM (SELECT DISTINCT company_id, window_start FROM {q(TABLE)}) d")
        assert distinct == [(4,)]
        assert ledger(connection) == [(TABLE, 2, None, "snapshot", 4, 0)]
        assert staging_table(TABLE) not in tables_in(connection)


def test_gold_changes_reach_the_databases_as_updates_inserts_and_deletes(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    merge_gold(spark, cfg, FIRST)  # v1
    export.run(spark, cfg, connections=export_connections)
    merge_gold(spark, cfg, [row("c-00001", 8, 0, 9, 55.0), row("c-00004", 8, 30, 2, 20.0)])  # v2: update + insert
    results = by_target(export.export_gold(spark, cfg, export_connections))
    for result in results.values():
        assert (result.mode, result.from_version, result.delta_version) == ("changes", 2, 2)
        assert (result.rows_upserted, result.rows_deleted) == (2, 0)
    expected = gold_rows(spark, cfg)
    assert ("c-00001", w(8, 0), w(8, 15), 9, 4, 3, 2, 3, 55.0, 75.25) in expected
    for connection in export_connections.values():
        assert db_rows(connection) == expected

    DeltaTable.forPath(spark, cfg.table("gold", TABLE)).delete("company_id = 'c-00002'")  # v3
    results = by_target(export.export_gold(spark, cfg, export_connections))
    assert {(r.mode, r.rows_upserted, r.rows_deleted) for r in results.values()} == {("changes", 0, 1)}
    expected = gold_rows(spark, cfg)
    assert len(expected) == 3
    for connection in export_connections.values():
        assert db_rows(connection) == expected
        assert ledger(connection) == [
            (TABLE, 1, None, "snapshot", 3, 0),
            (TABLE, 2, 2, "changes", 2, 0),
            (TABLE, 3, 3, "changes", 0, 1),
        ]


def test_crash_between_staging_and_commit_leaves_target_unchanged_and_next_run_completes(
    spark: SparkSession,
    cfg: ExportConfig,
    export_connections: dict[str, Connection],
    postgres_server: PostgresServer,
    mariadb_server: MariaDBServer,
) -> None:
    merge_gold(spark, cfg, FIRST)
    export.run(spark, cfg, connections=export_connections)
    before = {kind: db_rows(c) for kind, c in export_connections.items()}
    merge_gold(spark, cfg, [row("c-00002", 8, 0, 8, 41.0), row("c-00005", 9, 0, 1, 5.0)])

    def kill_postgres_session(step: ExportStep) -> None:
        # The server ends the session mid-transaction, as if the export process had died.
        pid = step.session.backend_id()
        with postgres_server.sql(admin=True) as admin:
            assert admin.scalar("SELECT pg_terminate_backend(%s)", [pid]) is True

    def crash_mysql(step: ExportStep) -> None:
        raise RuntimeError(f"simulated crash before COMMIT of {step.table}")

    pg_only = ExportConfig(scenario=cfg.scenario, data=cfg.data, targets=("postgres",))
    with pytest.raises(DatabaseError, match="COMMIT"):
        export.run(spark, pg_only, export_connections, ExportHooks(before_commit=kill_postgres_session))
    mysql_only = ExportConfig(scenario=cfg.scenario, data=cfg.data, targets=("mysql",))
    with pytest.raises(RuntimeError, match="simulated crash"):
        export.run(spark, mysql_only, export_connections, ExportHooks(before_commit=crash_mysql))

    staging = staging_table(TABLE)
    for kind, connection in export_connections.items():
        assert db_rows(connection) == before[kind]  # nothing of the crashed batch is visible
        assert [r[1] for r in ledger(connection)] == [1]
        q = dialect_for(connection.kind).quote
        assert run_sql(connection, f"SELECT COUNT(*) FROM {q(staging)}") == [(2,)]  # staged, not committed

    results = by_target(export.export_gold(spark, cfg, export_connections))
    assert {(r.mode, r.from_version, r.rows_upserted) for r in results.values()} == {("changes", 2, 2)}
    expected = gold_rows(spark, cfg)
    for connection in export_connections.values():
        assert db_rows(connection) == expected
        assert [r[1] for r in ledger(connection)] == [1, 2]
        assert staging not in tables_in(connection)


def test_rows_a_retried_task_staged_twice_are_exported_once(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    merge_gold(spark, cfg, FIRST)

    def duplicate_staging(step: ExportStep) -> None:
        # What a retried Spark task leaves behind: its partition's rows inserted a second time.
        q = dialect_for(step.session.kind).quote
        staging = q(staging_table(step.table))
        assert step.session.execute(f"INSERT INTO {staging} SELECT * FROM {staging}") == 3

    results = export.export_gold(spark, cfg, export_connections, ExportHooks(after_staging=duplicate_staging))
    assert {r.rows_upserted for r in results} == {3}
    for connection in export_connections.values():
        assert db_rows(connection) == gold_rows(spark, cfg)


def test_missing_change_feed_or_recreated_gold_falls_back_to_a_full_sync(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    path = cfg.table("gold", TABLE)
    merge_gold(spark, cfg, FIRST)
    export.run(spark, cfg, connections=export_connections)
    # A version written while the change data feed was off: the feed cannot serve the range.
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = false)")
    merge_gold(spark, cfg, [row("c-00006", 10, 0, 4, 30.0)])
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    results = by_target(export.export_gold(spark, cfg, export_connections))
    assert {(r.mode, r.rows_upserted, r.rows_deleted) for r in results.values()} == {("snapshot", 4, 0)}
    for connection in export_connections.values():
        assert db_rows(connection) == gold_rows(spark, cfg)

    # The gold table is rebuilt from scratch (new Delta table id, lower version, fewer rows).
    shutil.rmtree(path)
    merge_gold(spark, cfg, [row("c-00001", 8, 0, 5, 50.5)])
    results = by_target(export.export_gold(spark, cfg, export_connections))
    assert {(r.mode, r.delta_version, r.rows_upserted, r.rows_deleted) for r in results.values()} == {("snapshot", 1, 1, 3)}
    for connection in export_connections.values():
        assert db_rows(connection) == gold_rows(spark, cfg) == [row("c-00001", 8, 0, 5, 50.5)]


def test_null_keys_concurrent_exports_and_dropped_targets_are_handled(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    merge_gold(spark, cfg, FIRST)
    export.run(spark, cfg, connections=export_connections)
    before = {kind: db_rows(c) for kind, c in export_connections.items()}

    # A second export on the same database waits for nobody: it refuses at once.
    with (
        connect(export_connections["mysql"]) as other,
        export.export_lock(other),
        pytest.raises(ExportError, match="another medallion export"),
    ):
        export.run(spark, cfg, connections=export_connections)

    # A NULL in the key cannot become a primary key: refused, target untouched.
    merge_gold(spark, cfg, [(None, *row("x", 9, 0, 1, 1.0)[1:]), row("c-00001", 8, 0, 2, 2.0)])
    for target in ("postgres", "mysql"):
        single = ExportConfig(scenario=cfg.scenario, data=cfg.data, targets=(target,))
        with pytest.raises(ExportError, match=r"1 row\(s\) with NULL in its key"):
            export.run(spark, single, connections=export_connections)
        assert db_rows(export_connections[target]) == before[target]
    DeltaTable.forPath(spark, cfg.table("gold", TABLE)).delete("company_id IS NULL")

    # A target table dropped by hand is rebuilt in full, whatever the ledger says.
    run_sql(export_connections["postgres"], f'DROP TABLE "{TABLE}"')
    results = by_target(export.export_gold(spark, cfg, export_connections))
    assert (results["postgres"].mode, results["postgres"].rows_upserted) == ("snapshot", 3)
    assert results["mysql"].mode == "changes"
    for connection in export_connections.values():
        assert db_rows(connection) == gold_rows(spark, cfg)


def test_identifiers_outside_the_allowlist_never_reach_sql(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    # A gold table whose Delta schema carries a column name the allowlist refuses.
    bad = spark.createDataFrame([("c-1", w(8, 0), 1)], "company_id string, window_start timestamp, `Events-Total` bigint")
    bad.write.format("delta").save(cfg.table("gold", TABLE))
    with pytest.raises(IdentifierError, match="'Events-Total' cannot be used in SQL"):
        export.run(spark, cfg, connections=export_connections)
    for connection in export_connections.values():
        assert tables_in(connection) == set()  # refused before any statement ran

    # A table name that bypassed the scenario's validation is refused too.
    evil = GoldTable.model_construct(name='x"; DROP TABLE _medallion_exports; --', group_by=[], metrics=[])
    with connect(export_connections["postgres"]) as session, pytest.raises(IdentifierError, match="gold table name"):
        export.export_table(spark, cfg, evil, session, "postgres")
    for name in ("a`b", "Robert'); DROP TABLE students;--", "", "x" * 64):
        with pytest.raises(IdentifierError):
            dialect_for("mysql").quote(name)


def test_cli_reads_servers_and_password_from_the_environment(
    spark: SparkSession,
    cfg: ExportConfig,
    export_connections: dict[str, Connection],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    merge_gold(spark, cfg, FIRST)
    # What `medallion export --scenario driving --data DIR` runs.
    cli_cfg = export_config("driving", cfg.data.root)
    cli_session = SessionOptions(app_name="medallion-export")
    for kind, connection in export_connections.items():
        monkeypatch.delenv(f"MEDALLION_{kind.upper()}_PASSWORD", raising=False)
        monkeypatch.setenv(f"MEDALLION_{kind.upper()}_URL", f"{kind}ql://127.0.0.1:{connection.port}/medallion"
                           if kind == "postgres" else f"mariadb://127.0.0.1:{connection.port}/medallion")
    # No password variable yet: refused before Spark or a server is touched, naming the variable.
    with pytest.raises(ConfigError, match="MEDALLION_POSTGRES_PASSWORD"):
        export.run_export(cli_cfg, cli_session)
    for kind, connection in export_connections.items():
        monkeypatch.setenv(f"MEDALLION_{kind.upper()}_PASSWORD", connection.reveal_password())

    # run_export builds its session like production; getOrCreate hands it this one and
    # applies production settings to it, so put the test session's settings back afterwards.
    saved = {key: spark.conf.get(key, None) for key in session_config(SessionOptions())}
    try:
        export.run_export(cli_cfg, cli_session)
    finally:
        for key, value in saved.items():
            if value is not None and spark.conf.isModifiable(key):
                spark.conf.set(key, value)
    out = capsys.readouterr().out
    assert f"{TABLE} -> postgres: 3 upserted" in out and f"{TABLE} -> mysql: 3 upserted" in out
    for connection in export_connections.values():
        assert connection.reveal_password() not in out
        assert db_rows(connection) == gold_rows(spark, cfg)


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for kind in ("POSTGRES", "MYSQL"):
        monkeypatch.delenv(f"MEDALLION_{kind}_URL", raising=False)
        monkeypatch.delenv(f"MEDALLION_{kind}_USER", raising=False)
    yield


ODD_SCHEMA = "company_id string, window_start timestamp, window_end timestamp, note string, speed double, events bigint, ok boolean"
ODD_COLUMNS = [part.split()[0] for part in ODD_SCHEMA.split(", ")]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# What the staging load must carry exactly: NULL apart from '', text a CSV or SQL literal could
# mangle, doubles at the ends of their range and their sign, instants to the microsecond.
ODD_ROWS = [
    ("plain", at(2026, 1, 5, 8), at(2026, 1, 5, 8, 15), "", 0.1 + 0.2, 1, True),
    ("nulls", at(2026, 1, 5, 8), None, None, None, None, None),
    ('ünïcødé 😀 "q", \\ back\nline\ttab', at(2026, 1, 5, 8, 15), at(2026, 1, 5, 8, 30), "日本語 , \" ' \\N", -0.0, 2**63 - 1, False),
    ("max", at(1970, 1, 1), at(2999, 12, 31, 23, 59, 59, 999999), "\\N", 1.7976931348623157e308, -(2**63), True),
    ("tiny", at(2026, 1, 5, 8, 0, 0, 123456), at(2026, 1, 5, 8, 0, 0, 1), "NULL", 5e-324, 0, False),
    ("", at(2026, 1, 5, 9), at(2026, 1, 5, 9, 15), " ", -2.2250738585072014e-308, -1, True),
]


def exact(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows comparable bit for bit: floats by repr (keeps -0.0 and NaN), instants as naive UTC."""
    return sorted(tuple(repr(v) if isinstance(v, float) else naive_utc(v) for v in r) for r in rows)


def odd_db_rows(connection: Connection) -> list[tuple[Any, ...]]:
    q = dialect_for(connection.kind).quote
    rows = run_sql(connection, f"SELECT {', '.join(q(c) for c in ODD_COLUMNS)} FROM {q(TABLE)}")
    return exact([tuple(bool(v) if c == "ok" and v is not None else v for c, v in zip(ODD_COLUMNS, r, strict=True)) for r in rows])


def odd_gold_rows(spark: SparkSession, cfg: ExportConfig) -> list[tuple[Any, ...]]:
    """The gold table as Spark's own `collect` reads it (not the export's Arrow path)."""
    timestamps = {"window_start", "window_end"}
    df = spark.read.format("delta").load(cfg.table("gold", TABLE))
    selected = [F.date_format(c, "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(c) if c in timestamps else F.col(c) for c in ODD_COLUMNS]
    return exact([
        tuple(datetime.fromisoformat(v) if c in timestamps and v is not None else v for c, v in zip(ODD_COLUMNS, r, strict=True))
        for r in df.select(*selected).collect()
    ])


def test_nulls_empty_strings_unicode_extreme_doubles_and_instants_round_trip_exactly(
    spark: SparkSession, cfg: ExportConfig, export_connections: dict[str, Connection]
) -> None:
    spark.createDataFrame(ODD_ROWS, ODD_SCHEMA).write.format("delta").save(cfg.table("gold", TABLE))
    gold = odd_gold_rows(spark, cfg)
    # Gold holds what was written; Spark itself may store -0.0 as 0.0, the rest bit for bit.
    assert [tuple("0.0" if v == "-0.0" else v for v in r) for r in exact(ODD_ROWS)] == [
        tuple("0.0" if v == "-0.0" else v for v in r) for r in gold
    ]
    results = export.export_gold(spark, cfg, export_connections)
    assert {(r.mode, r.rows_upserted) for r in results} == {("snapshot", len(ODD_ROWS))}
    assert odd_db_rows(export_connections["postgres"]) == gold
    # MariaDB has no negative zero (even `SELECT -0.0e0` returns 0); everything else is exact.
    assert odd_db_rows(export_connections["mysql"]) == [tuple("0.0" if v == "-0.0" else v for v in r) for r in gold]

    # PostgreSQL also holds the non-finite doubles (MySQL's DOUBLE has no such values).
    special = [("inf", at(2026, 1, 6), None, "x", float("inf"), 1, True),
               ("-inf", at(2026, 1, 6), None, "y", float("-inf"), 2, False),
               ("nan", at(2026, 1, 6), None, "z", float("nan"), 3, None)]
    spark.createDataFrame(special, ODD_SCHEMA).write.format("delta").mode("append").save(cfg.table("gold", TABLE))
    pg_only = ExportConfig(scenario=cfg.scenario, data=cfg.data, targets=("postgres",))
    assert [r.rows_upserted for r in export.export_gold(spark, pg_only, export_connections)] == [len(ODD_ROWS) + 3]
    assert odd_db_rows(export_connections["postgres"]) == odd_gold_rows(spark, cfg)
    assert {"inf", "-inf", "nan"} <= {r[4] for r in odd_gold_rows(spark, cfg)}
