"""Export benchmarks: gold -> PostgreSQL and MySQL/MariaDB, against each driver's own bulk load
of the same rows into the same server, measured in the same run (ratio = baseline / export).

- PostgreSQL: the whole export of a gold table (Delta read, staging, the one transaction with
  delete, upsert and ledger row) vs a psycopg `COPY ... FROM STDIN` (`write_row`) of the same
  rows, already in memory as Python tuples, into a fresh table with the target's DDL (goal >= 0.5);
- MySQL/MariaDB: the same export vs a PyMySQL `executemany` multi-row INSERT of the same rows into
  such a table (goal >= 0.5);
- write modes, per target: `export --mode row` (one INSERT and commit per row, as a row-at-a-time
  producer writes) vs `--mode batch` (the bulk load above), the staging write of the same rows
  (a smaller table: row mode is slow), reported as rows/s and mean milliseconds per row.

The gold table is generated in the shape the gold job writes (company_activity_15m of the
driving scenario: group key, window, counts, doubles), 1 M rows in full mode. Every export is a
full snapshot into an empty target, as a first export is. Each figure is the best of a few
rounds (the machine is shared and noisy); a warm-up round pays JVM and server start-up first.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.layout import DataRoot
from medallion.databases.bulk import python_rows
from medallion.databases.connection import Connection
from medallion.databases.dialects import LEDGER_TABLE, PostgresDialect
from medallion.databases.sql import connect
from spark_jobs import export
from spark_jobs.config import ExportConfig, export_config

Result = dict[str, Any]
TABLE = "company_activity_15m"
BASELINE_TABLE = "bench_bulk_baseline"
COMPANIES = 20_000
WINDOW_SECONDS = 15 * 60


def gold_frame(spark: SparkSession, rows: int) -> DataFrame:
    """`rows` gold-like rows: one per (company, 15-minute window), counts and speeds."""
    ids = spark.range(rows)
    window = F.col("id") / COMPANIES
    start = F.timestamp_seconds(F.lit(1_767_600_000) + F.floor(window) * WINDOW_SECONDS)
    events = (F.col("id") * 7919 % 997).cast("bigint")
    speed = (F.col("id") * 104_729 % 1_000_003) / F.lit(7_919.0)
    return ids.select(
        F.format_string("c-%05d", (F.col("id") % COMPANIES).cast("int")).alias("company_id"),
        start.alias("window_start"),
        (start + F.expr(f"INTERVAL {WINDOW_SECONDS} SECONDS")).alias("window_end"),
        events.alias("events"),
        (events / 2).cast("bigint").alias("start_driving"),
        (events / 3).cast("bigint").alias("stopped_driving"),
        (events - (events / 2).cast("bigint") - (events / 3).cast("bigint")).alias("delivered"),
        (F.col("id") % 7).alias("active_drivers"),
        speed.alias("avg_speed_kmh"),
        (speed * 1.25 + 0.1).alias("p95_speed_kmh"),
    )


def write_gold(spark: SparkSession, cfg: ExportConfig, rows: int) -> None:
    """The gold table at `rows` rows, as one Delta version (not timed)."""
    gold_frame(spark, rows).write.format("delta").mode("overwrite").save(cfg.table("gold", TABLE))


@dataclass
class ExportTiming:
    """One export's seconds in all and per step (read + staging, commit)."""

    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


def empty_target(connection: Connection) -> None:
    """Drop the exported table, the baseline's table and the ledger: the next export is a first one."""
    with connect(connection) as session:
        for table in (TABLE, BASELINE_TABLE, LEDGER_TABLE):
            session.execute(session.dialect.drop_table(table))


def timed_export(spark: SparkSession, cfg: ExportConfig, connection: Connection) -> ExportTiming:
    """One full export of the gold table into an empty target, with the time of each step."""
    empty_target(connection)
    marks: dict[str, float] = {}

    def mark(name: str) -> Callable[[export.ExportStep], None]:
        return lambda _step: marks.__setitem__(name, time.perf_counter())

    hooks = export.ExportHooks(before_staging=mark("staging"), after_staging=mark("commit"))
    gold = cfg.scenario.gold_table(TABLE)
    started = time.perf_counter()
    with connect(connection) as session, export.export_lock(session):
        result = export.export_table(spark, cfg, gold, session, connection.kind, hooks)
    ended = time.perf_counter()
    if result.mode != "snapshot":
        raise RuntimeError(f"the benchmark expected a full snapshot into an empty target, got {result.describe()}")
    return ExportTiming(ended - started, {
        "prepare": marks["staging"] - started,
        "read + staging": marks["commit"] - marks["staging"],
        "commit": ended - marks["commit"],
    })


def read_seconds(spark: SparkSession, cfg: ExportConfig) -> float:
    """Delta -> Arrow in the driver alone: the read inside the export's staging step."""
    started = time.perf_counter()
    spark.read.format("delta").load(cfg.table("gold", TABLE)).toArrow()
    return time.perf_counter() - started


def baseline_seconds(connection: Connection, columns: list[tuple[str, str]], keys: list[str], rows: list[tuple[Any, ...]]) -> float:
    """The driver's own bulk load of the rows into a fresh table with the target's DDL."""
    names = [name for name, _ in columns]
    with connect(connection) as session:
        dialect = session.dialect
        session.execute(dialect.drop_table(BASELINE_TABLE))
        session.execute(dialect.create_table(BASELINE_TABLE, columns, keys))
        started = time.perf_counter()
        if isinstance(dialect, PostgresDialect):
            session.copy_rows(dialect.copy_from_stdin(BASELINE_TABLE, names, "text"), rows)
        else:
            session.insert_many(dialect.insert_row(BASELINE_TABLE, names), rows)
        seconds = time.perf_counter() - started
        session.execute(dialect.drop_table(BASELINE_TABLE))
    return seconds


def gold_rows(spark: SparkSession, cfg: ExportConfig) -> list[tuple[Any, ...]]:
    """The gold table as Python tuples (the baselines start from rows already in memory)."""
    arrow = spark.read.format("delta").load(cfg.table("gold", TABLE)).toArrow()
    return [row for batch in arrow.to_batches(max_chunksize=50_000) for row in python_rows(batch)]


def compare(
    spark: SparkSession,
    cfg: ExportConfig,
    connection: Connection,
    rows: list[tuple[Any, ...]],
    rounds: int,
    warm_up: bool = True,
) -> tuple[ExportTiming, float]:
    """Best export and best baseline over `rounds`, alternating, after one warm-up export."""
    gold = cfg.scenario.gold_table(TABLE)
    version = export.gold_version(spark, cfg.table("gold", TABLE), TABLE)
    columns = export.sql_columns(export.read_schema(spark, version), gold)
    if warm_up:
        timed_export(spark, cfg, connection)  # JVM code paths, server caches
    exports, baselines = [], []
    for _ in range(rounds):
        baselines.append(baseline_seconds(connection, columns, gold.key_columns, rows))
        exports.append(timed_export(spark, cfg, connection))
    empty_target(connection)
    return min(exports, key=lambda t: t.seconds), min(baselines)


def write_mode_rows(spark: SparkSession, connections: Mapping[str, Connection], cfg: ExportConfig, rows: int) -> list[Result]:
    """Per target: the staging write of a first export in row mode vs batch mode (best of 2 each)."""
    write_gold(spark, cfg, rows)
    gold = cfg.scenario.gold_table(TABLE)
    results: list[Result] = []
    for target, connection in connections.items():
        best: dict[str, export.ExportResult] = {}
        for mode in ("batch", "row", "batch", "row"):
            empty_target(connection)
            with connect(connection) as session, export.export_lock(session):
                result = export.export_table(spark, replace(cfg, write_mode=mode), gold, session, target)
            if result.rows_written != rows:
                raise RuntimeError(f"the benchmark expected {rows} staged rows, got {result.describe()}")
            if mode not in best or result.write_seconds < best[mode].write_seconds:
                best[mode] = result
        empty_target(connection)
        row, batch = best["row"], best["batch"]
        ratio = batch.write_seconds / row.write_seconds
        results.append({
            "name": f"export write mode -> {target}: --mode row vs --mode batch (staging write)",
            "value": round(rows / row.write_seconds), "unit": "rows/s",
            "baseline": f"--mode batch: {round(rows / batch.write_seconds)} rows/s", "ratio": round(ratio, 4),
            "goal": "reported", "ok": True,
            "notes": f"{rows} rows, best of 2: row {row.write_rate()}; batch {batch.write_rate()}",
        })
    return results


def run_export_benchmarks(
    spark: SparkSession, connections: Mapping[str, Connection], rows: int, rounds: int, mode_rows: int = 0
) -> list[Result]:
    """The export rows of `medallion bench`: per target in `connections`, the export vs the
    driver's bulk load (`rows`), then (with `mode_rows`) row mode vs batch mode."""
    workdir = Path(tempfile.mkdtemp(prefix="medallion-bench-export-"))
    try:
        results = _run(spark, connections, export_config("driving", DataRoot(workdir / "data")), rows, rounds) if rows else []
        if mode_rows:
            results += write_mode_rows(spark, connections, export_config("driving", DataRoot(workdir / "modes")), mode_rows)
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(spark: SparkSession, connections: Mapping[str, Connection], cfg: ExportConfig, rows: int, rounds: int) -> list[Result]:
    write_gold(spark, cfg, rows)
    in_memory = gold_rows(spark, cfg)
    read = min(read_seconds(spark, cfg) for _ in range(2))
    baseline_names = {"postgres": "psycopg COPY (write_row)", "mysql": "PyMySQL multi-row INSERT (executemany)"}
    results: list[Result] = []
    for target, connection in connections.items():
        best, base = compare(spark, cfg, connection, in_memory, rounds)
        ratio = base / best.seconds
        steps = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in best.steps.items())
        results.append({
            "name": f"export gold -> {target} (full snapshot, exactly once)", "value": round(rows / best.seconds),
            "unit": "rows/s", "baseline": f"{baseline_names[target]}: {round(rows / base)} rows/s",
            "ratio": round(ratio, 3), "goal": ">= 0.5", "ok": ratio >= 0.5,
            "notes": f"{rows} rows, best of {rounds}: {best.seconds:.1f}s vs {base:.1f}s; steps: {steps} "
                     f"(of which Delta -> Arrow {read:.1f}s)",
        })
    return results


def run_benchmarks(
    quick: bool, connections: Mapping[str, Connection], conf: Mapping[str, str] | None = None, log_level: str | None = None
) -> list[Result]:
    """The export group of `medallion bench` in its own Spark session (servers are the caller's)."""
    from spark_jobs.session import SessionOptions, build_session

    spark = build_session(SessionOptions(app_name="medallion-bench", shuffle_partitions=2, extra=dict(conf or {}),
                                         log_level=log_level or SessionOptions.log_level))
    return run_export_benchmarks(
        spark, connections, rows=100_000 if quick else 1_000_000, rounds=1 if quick else 2,
        mode_rows=2_000 if quick else 20_000,
    )
