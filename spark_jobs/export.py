"""Export: gold Delta tables -> PostgreSQL and MySQL/MariaDB, exactly once.

    spark-submit --jars "$(medallion jars --csv)" spark_jobs/export.py --scenario driving --data DIR --target all
    medallion export --scenario driving --data DIR --target postgres|mysql|all

Rows never go straight into a target table: they are staged, then committed in one
transaction with the ledger row. For every gold table in `scenario.export_tables` and every
target, under a per-database lock (one export at a time):

1. `target_position`: the ledger table `_medallion_exports` says which Delta version of the
   gold table the target already reflects. If that is the current version, nothing happens.
2. `stage`, rows to send: the changes since that version from Delta's change data feed,
   reduced to the latest change per gold key (deletes included); or the whole snapshot at the
   current version the first time, when the gold table was recreated (new Delta table id), or
   when the change feed no longer covers the range (vacuumed, or enabled later).
3. `stage`, continued: Spark hands them to the driver as Arrow, which loads them into a
   keyless staging table `_medallion_stage_<table>` (dropped and recreated every run, so a
   crashed run's leftovers never leak in; duplicate rows are harmless) with each kind's bulk
   path: PostgreSQL `COPY`, MySQL multi-row INSERT (medallion.databases.bulk).
4. `commit_staged`, one database transaction: delete staged 'D' keys (for a snapshot: every
   key absent from it), upsert staged 'U' rows by the gold key (`INSERT ... ON CONFLICT DO
   UPDATE` / `INSERT ... ON DUPLICATE KEY UPDATE`), insert the ledger row, clear the staging
   table, COMMIT. A crash anywhere before COMMIT leaves target and ledger unchanged, and the
   next run redoes the same version range; running export twice leaves the same rows.

Every statement, and every difference between PostgreSQL and MySQL, comes from
`medallion.databases.dialects`; this module only decides which to run, and when.

Target tables are created if missing with SQL types mapped from the gold schema and a PRIMARY
KEY on the gold key (group-by columns + `window_start`). The ledger has one row per committed
export batch: export_id, table_name, delta_table_id, delta_version, from_version (NULL for a
snapshot), mode ('snapshot' | 'changes'), rows_upserted, rows_deleted, exported_at (UTC).

Where the data goes: `run(spark, cfg, connections=...)` takes resolved connections (the demo
starts throwaway servers with `medallion.local.open_connections` and passes them in).
Without them, and always from the command line, the servers must be configured because they
must outlive the command: `$MEDALLION_POSTGRES_URL` / `$MEDALLION_MYSQL_URL` (override) or
`export.<kind>.url` in the scenario; user from `$MEDALLION_<KIND>_USER` or `export.<kind>.user`;
password from the environment variable named by `export.<kind>.password_env`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from medallion.contracts.errors import ConfigError, DatabaseError, ExportError, MedallionError
from medallion.contracts.options import (
    add_master_option,
    add_scenario_options,
    add_target_option,
    add_write_mode_option,
    export_kinds,
)
from medallion.contracts.scenario import GoldTable, Scenario
from medallion.contracts.serving import ORPHAN_VIEW
from medallion.databases.bulk import load_batches, load_rows_one_by_one
from medallion.databases.connection import Connection
from medallion.databases.dialects import (
    LEDGER_TABLE,
    OP_COLUMN,
    ForeignKey,
    LedgerEntry,
    check_identifier,
    export_lock_name,
    staging_table,
)
from medallion.databases.sql import SqlSession, connect
from medallion.databases.targets import resolve_connections
from medallion.databases.views import orphan_select, view_select
from spark_jobs import storage
from spark_jobs.config import ExportConfig, export_config
from spark_jobs.session import SessionOptions, build_session, options_from_args

Mode = Literal["snapshot", "changes", "skipped", "views"]
# Rows per batch sent to a target: large enough that per-statement costs vanish, small enough
# that one batch as CSV text or Python tuples stays a few megabytes.
STAGING_BATCH_ROWS = 20_000
CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")
# Error classes meaning "the change feed cannot serve this version range": export falls back
# to a full snapshot, which is always correct (just larger).
_CDF_GONE_MARKERS = (
    "DELTA_MISSING_CHANGE_DATA",
    "DELTA_CHANGE_DATA_FILE_NOT_FOUND",
    "DELTA_VERSION_NOT_CONTIGUOUS",
    "VERSION_NOT_FOUND",
    "DELTA_CDC_NOT_ALLOWED_IN_THIS_VERSION",
    "FileNotFoundException",
)


@dataclass(frozen=True)
class ExportResult:
    """What one export of one gold table into one target did."""

    table: str
    target: str
    mode: Mode
    delta_version: int
    from_version: int | None
    rows_upserted: int
    rows_deleted: int
    seconds: float
    # Served entities: staged rows withheld because a foreign key found no served parent.
    orphans: int = 0
    views: tuple[str, ...] = ()
    # The staging write: rows sent, its seconds, and how (`--mode`).
    rows_written: int = 0
    write_seconds: float = 0.0
    write_mode: str = "batch"

    def write_rate(self) -> str:
        """`N rows/s, M ms per row (mode)` of the staging write, or '' when it wrote nothing."""
        if not self.rows_written or self.write_seconds <= 0:
            return ""
        per_row_ms = 1000 * self.write_seconds / self.rows_written
        return f"{self.rows_written / self.write_seconds:,.0f} rows/s, {per_row_ms:.3f} ms per row ({self.write_mode} mode)"

    def describe(self) -> str:
        """One line for the console."""
        if self.mode == "views":
            return f"views -> {self.target}: {', '.join(self.views)} (created or replaced) in {self.seconds:.1f}s"
        if self.mode == "skipped":
            return f"{self.table} -> {self.target}: up to date at Delta version {self.delta_version}"
        source = "full snapshot" if self.mode == "snapshot" else f"changes since v{self.from_version}"
        return (
            f"{self.table} -> {self.target}: {self.rows_upserted} upserted, {self.rows_deleted} deleted "
            f"(Delta v{self.delta_version}, {source}) in {self.seconds:.1f}s"
            + (f"; {self.orphans} orphan row(s) withheld" if self.orphans else "")
            + (f"; staged {self.rows_written} rows: {self.write_rate()}" if self.rows_written else "")
        )


@dataclass(frozen=True)
class ExportStep:
    """Where an export stands when a hook runs: the table, the target and its open session."""

    table: str
    target: str
    delta_version: int
    session: SqlSession


@dataclass(frozen=True)
class ExportHooks:
    """Callbacks at fixed points of the real export path (tests use them to crash it there).

    Attributes:
        before_staging: the staging table exists and is empty; Spark is about to write it.
        after_staging: after Spark wrote the staging table, before the transaction begins.
        before_commit: inside the transaction, after every statement, right before COMMIT.
    """

    before_staging: Callable[[ExportStep], None] | None = None
    after_staging: Callable[[ExportStep], None] | None = None
    before_commit: Callable[[ExportStep], None] | None = None


class Exportable(Protocol):
    """What the staging and commit steps need of a table: a gold table or a served entity."""

    @property
    def name(self) -> str: ...

    @property
    def key_columns(self) -> list[str]: ...


@dataclass(frozen=True)
class ServedTable:
    """A silver entity served as a relational table (`export.serve`): its scenario fields,
    PRIMARY KEY on the entity's key, FOREIGN KEYs to served parents."""

    name: str
    key: str
    fields: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]

    @property
    def key_columns(self) -> list[str]:
        return [self.key]


def served_tables(scenario: Scenario) -> list[ServedTable]:
    """`export.serve` as tables, parents first (the order they are loaded in)."""
    tables = []
    for served in scenario.served_entities:
        entity = scenario.entities[served.entity]
        foreign_keys = tuple(
            ForeignKey(column, parent, scenario.entities[parent].key) for column, parent in served.foreign_keys.items()
        )
        tables.append(ServedTable(served.entity, entity.key, tuple(entity.fields), foreign_keys))
    return tables


# --- pure transforms and schema mapping ----------------------------------------------------


def latest_changes(keys: list[str]) -> Callable[[DataFrame], DataFrame]:
    """Change-feed rows -> one row per key: its last change, with `_op` 'U' (upsert) or 'D'.

    Pre-images are dropped; within one commit a delete loses to an insert of the same key
    (an overwrite deletes and re-inserts in the same version).
    """

    def transform(df: DataFrame) -> DataFrame:
        data_columns = [c for c in df.columns if c not in CDF_COLUMNS]
        is_delete = F.col("_change_type") == "delete"
        order = Window.partitionBy(*keys).orderBy(F.col("_commit_version").desc(), is_delete.asc())
        return (
            df.where(F.col("_change_type") != "update_preimage")
            .withColumn("_rank", F.row_number().over(order))
            .where(F.col("_rank") == 1)
            .select(*data_columns, F.when(is_delete, F.lit("D")).otherwise(F.lit("U")).alias(OP_COLUMN))
        )

    return transform


def with_upsert_op(df: DataFrame) -> DataFrame:
    """Snapshot rows -> rows to upsert (`_op` = 'U')."""
    return df.withColumn(OP_COLUMN, F.lit("U"))


def logical_type(name: str, data_type: T.DataType) -> str:
    """The dialect-neutral SQL type of a gold column (see medallion.databases.dialects)."""
    simple: dict[type[T.DataType], str] = {
        T.StringType: "string", T.LongType: "bigint", T.IntegerType: "int",
        T.ShortType: "smallint", T.ByteType: "smallint", T.DoubleType: "double",
        T.FloatType: "float", T.BooleanType: "boolean", T.TimestampType: "timestamp",
        T.TimestampNTZType: "timestamp_ntz", T.DateType: "date",
    }
    if isinstance(data_type, T.DecimalType):
        return f"decimal({data_type.precision},{data_type.scale})"
    for spark_type, logical in simple.items():
        if type(data_type) is spark_type:
            return logical
    raise ExportError(
        f"gold column {name!r} has type {data_type.simpleString()}, which export cannot map to "
        "SQL; give the metric a numeric, string, boolean or timestamp result"
    )


def check_names(gold: GoldTable) -> None:
    """The gold table's name and key columns must pass the identifier allowlist."""
    check_identifier(gold.name, "gold table name")
    for key in gold.key_columns:
        check_identifier(key, f"key column of gold table {gold.name!r}")


def served_columns(schema: T.StructType, served: ServedTable) -> list[tuple[str, str]]:
    """(name, logical type) of a served entity's scenario fields in silver (lineage columns stay
    in the lake), each name checked against the allowlist."""
    types = {f.name: f.dataType for f in schema.fields}
    missing = [name for name in served.fields if name not in types]
    if missing:
        raise ExportError(
            f"silver table {served.name!r} has no column(s) {missing}; rebuild it with `medallion reprocess` "
            "for the current scenario"
        )
    return [
        (check_identifier(name, f"field of served entity {served.name!r}"), logical_type(name, types[name]))
        for name in served.fields
    ]


def sql_columns(schema: T.StructType, gold: GoldTable) -> list[tuple[str, str]]:
    """(name, logical type) of every gold column, each name checked against the allowlist."""
    columns = [
        (check_identifier(f.name, f"column name of gold table {gold.name!r}"), logical_type(f.name, f.dataType))
        for f in schema.fields
        if f.name not in CDF_COLUMNS
    ]
    missing = [k for k in gold.key_columns if k not in {name for name, _ in columns}]
    if missing:
        raise ExportError(
            f"gold table {gold.name!r} has no key column(s) {missing} (its key is {gold.key_columns}); "
            "rebuild it with `medallion pipeline` for the current scenario"
        )
    return columns


# --- reading gold ---------------------------------------------------------------------------


class Position(NamedTuple):
    """A Delta table id and version: where a gold table is, or what a target last committed."""

    table_id: str
    version: int


@dataclass(frozen=True)
class GoldVersion:
    """Identity and current version of a gold Delta table."""

    path: str
    table_id: str
    version: int

    @property
    def position(self) -> Position:
        return Position(self.table_id, self.version)

    def first_change_after(self, previous: Position | None) -> int | None:
        """The first version the change feed must serve to bring `previous` up to this one; None
        when it cannot (nothing exported yet, or the gold table was recreated since)."""
        if previous is None or previous.table_id != self.table_id or previous.version >= self.version:
            return None
        return previous.version + 1


def gold_version(spark: SparkSession, path: str, name: str, layer: str = "gold") -> GoldVersion:
    """The Delta table id and latest version of a gold (or served silver) table."""
    if not storage.is_delta_table(spark, path):
        raise ExportError(
            f"{layer} table {name!r} does not exist at {path}: run `medallion pipeline` for this "
            "scenario and data root first"
        )
    table = DeltaTable.forPath(spark, path)
    version = int(table.history(1).select("version").first()[0])  # type: ignore[index]
    table_id = str(table.detail().select("id").first()[0])  # type: ignore[index]
    return GoldVersion(path=path, table_id=table_id, version=version)


def read_schema(spark: SparkSession, gold: GoldVersion) -> T.StructType:
    """The gold table's columns as of the version being exported."""
    return spark.read.format("delta").option("versionAsOf", gold.version).load(gold.path).schema


def read_snapshot(spark: SparkSession, gold: GoldVersion) -> DataFrame:
    """The gold table exactly as of the version being exported, as rows to upsert."""
    return spark.read.format("delta").option("versionAsOf", gold.version).load(gold.path).transform(with_upsert_op)


def read_changes(spark: SparkSession, gold: GoldVersion, start: int, keys: list[str]) -> DataFrame:
    """The latest change per key between `start` and the exported version (inclusive)."""
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", start)
        .option("endingVersion", gold.version)
        .load(gold.path)
        .transform(latest_changes(keys))
    )


def read_new_rows(spark: SparkSession, silver: GoldVersion, since: int, key: str) -> DataFrame:
    """Rows of an append-only silver table added after version `since`, as rows to upsert.

    Silver never updates or deletes a row (keys are unique across batches), so the rows new
    since a version are the current rows whose key that version lacks."""
    current = spark.read.format("delta").option("versionAsOf", silver.version).load(silver.path)
    before = spark.read.format("delta").option("versionAsOf", since).load(silver.path).select(key)
    return current.join(before, key, "left_anti").transform(with_upsert_op)


def _change_feed_gone(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _CDF_GONE_MARKERS)


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a Spark failure as one line, e.g. `PSQLException: Connection refused`.

    A Py4J error's text is the whole Java stack trace (over a hundred lines); the deepest
    `Caused by` is the part that says what happened.
    """
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            for _depth in range(20):
                deeper = cause.getCause()
                if deeper is None or deeper.equals(cause):
                    break
                cause = deeper
            name = str(cause.getClass().getSimpleName())
            message = cause.getMessage()
            return f"{name}: {message}" if message else name
        except Exception:  # the JVM may be going down too; fall back to the Python text
            pass
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def spark_write_failed(exc: BaseException, connection: Connection, what: str) -> DatabaseError:
    """A one-line DatabaseError for a failed staging write (Spark's read or the load), password masked."""
    cause = _one_line(connection.scrub(str(exc) if isinstance(exc, DatabaseError) else _root_cause(exc)))
    return DatabaseError(
        f"Spark could not write {what} on {connection}: {cause}. Nothing was committed for it; "
        "check that the server runs and run export again"
    )


# --- one table into one target: the steps of the module docstring ---------------------------


@dataclass(frozen=True)
class TableExport:
    """One gold table on its way into one target, at the gold version being exported."""

    gold: Exportable  # a gold table, or a served silver entity (`served`)
    target: str
    version: GoldVersion
    columns: list[tuple[str, str]]  # (name, logical type), see sql_columns
    served: ServedTable | None = None
    write_mode: Literal["batch", "row"] = "batch"

    @property
    def parents(self) -> tuple[ForeignKey, ...]:
        return self.served.foreign_keys if self.served is not None else ()

    @property
    def staging(self) -> str:
        return staging_table(self.gold.name)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def staging_description(self) -> str:
        return f"the staging table {self.staging} of {self.gold.name!r}"

    def step(self, session: SqlSession) -> ExportStep:
        return ExportStep(self.gold.name, self.target, self.version.version, session)


@dataclass(frozen=True)
class StagedBatch:
    """The commit's input: a table export whose rows are in its staging table, and their source."""

    export: TableExport
    mode: Literal["snapshot", "changes"]
    from_version: int | None  # first change-feed version read; None for a snapshot
    written: StagingWrite


class RowCounts(NamedTuple):
    """Distinct keys one commit wrote and removed, and (served entities) withheld as orphans."""

    upserted: int
    deleted: int
    orphans: int = 0


def _fire(hook: Callable[[ExportStep], None] | None, export: TableExport, session: SqlSession) -> None:
    if hook is not None:
        hook(export.step(session))


@contextmanager
def export_lock(session: SqlSession) -> Iterator[None]:
    """Hold the per-database export lock for the block; ExportError when another export has it."""
    dialect = session.dialect
    name = export_lock_name(session.connection.database)
    if not session.scalar(*dialect.try_lock(name)):
        raise ExportError(
            f"another medallion export is writing to {session.connection} right now; wait for it "
            "to finish and run export again (one export per database at a time)"
        )
    try:
        yield
    finally:
        with suppress(MedallionError):  # the lock dies with the session anyway
            session.scalar(*dialect.unlock(name))


def prepare_target(
    session: SqlSession, gold: Exportable, columns: list[tuple[str, str]], foreign_keys: tuple[ForeignKey, ...] = ()
) -> bool:
    """Create the ledger and the target table if missing; refuse a target with other columns.

    Returns:
        True when the target table was just created (so the ledger cannot be trusted for it).
    """
    dialect = session.dialect
    session.execute(dialect.ledger_ddl())
    existing = [row[0] for row in session.query(*dialect.columns_of(gold.name))]
    wanted = [name for name, _ in columns]
    if existing and set(existing) != set(wanted):
        raise ExportError(
            f"{session.connection} already has a table {gold.name!r} with columns {existing}, but the "
            f"gold table has {wanted}. Drop the database table (and its rows in {LEDGER_TABLE}) "
            "to re-export it, or export into another database"
        )
    if existing:
        return False
    session.execute(dialect.create_table(gold.name, columns, gold.key_columns, foreign_keys=foreign_keys))
    return True


def last_export(session: SqlSession, table: str) -> Position | None:
    """The Delta table id and version the target last committed for a table, or None."""
    rows = session.query(*session.dialect.last_export(table))
    return Position(str(rows[0][0]), int(rows[0][1])) if rows else None


def target_position(session: SqlSession, export: TableExport) -> Position | None:
    """Step 1: what the target already reflects (None: nothing it can build on)."""
    created = prepare_target(session, export.gold, export.columns, export.parents)
    # A target table dropped by hand is recreated empty: its ledger rows no longer hold.
    return None if created else last_export(session, export.gold.name)


class StagingWrite(NamedTuple):
    """The rows a staging write sent to the server and the seconds it took (Spark's read excluded)."""

    rows: int
    seconds: float


def write_staging(rows: DataFrame, session: SqlSession, export: TableExport) -> StagingWrite:
    """Append rows to the (existing) staging table: Spark hands them over as Arrow, the driver
    loads them (PostgreSQL COPY, MySQL multi-row INSERT; see medallion.databases.bulk).

    Measured against Spark's JDBC writer in docs/performance.md ("Export staging"): COPY is about
    twice as fast on PostgreSQL; on MariaDB Connector/J with `rewriteBatchedStatements` was
    faster, but dropped the microseconds of some timestamps. Returns the number of rows staged.
    """
    columns = [*export.column_names, OP_COLUMN]
    arrow = rows.select(*columns).toArrow()  # Spark's failures (e.g. the change feed gone) surface here
    load = load_rows_one_by_one if export.write_mode == "row" else load_batches
    began = time.perf_counter()
    sent = load(session, export.staging, columns, arrow.to_batches(max_chunksize=STAGING_BATCH_ROWS))
    return StagingWrite(sent, time.perf_counter() - began)


def stage_changes(spark: SparkSession, session: SqlSession, export: TableExport, start: int) -> StagingWrite | None:
    """Steps 2 and 3 from the change feed: stage the latest change per key since `start`.

    Returns:
        None when the change feed cannot serve that range (the staging table is empty again).
    """
    try:
        if export.served is not None:
            rows = read_new_rows(spark, export.version, start - 1, export.served.key)
        else:
            rows = read_changes(spark, export.version, start, export.gold.key_columns)
        return write_staging(rows, session, export)
    except Exception as exc:
        if not _change_feed_gone(exc):
            raise spark_write_failed(exc, session.connection, export.staging_description) from None
    # Rows a failed attempt staged would be resent by the snapshot anyway; start clean.
    session.execute(session.dialect.clear_table(export.staging))
    return None


def stage_snapshot(spark: SparkSession, session: SqlSession, export: TableExport) -> StagingWrite:
    """Steps 2 and 3 from the whole table: stage every gold row as of the exported version."""
    try:
        return write_staging(read_snapshot(spark, export.version), session, export)
    except Exception as exc:
        raise spark_write_failed(exc, session.connection, export.staging_description) from None


def stage(
    spark: SparkSession, session: SqlSession, export: TableExport, previous: Position | None, hooks: ExportHooks
) -> StagedBatch:
    """Steps 2 and 3: a fresh staging table, filled with the changes since `previous` when the
    change feed can serve them (same Delta table, older version), else with the snapshot."""
    session.execute(session.dialect.drop_table(export.staging))
    session.execute(session.dialect.create_staging(export.staging, export.columns))
    _fire(hooks.before_staging, export, session)
    start = export.version.first_change_after(previous)
    written = stage_changes(spark, session, export, start) if start is not None else None
    if written is not None:
        batch = StagedBatch(export, "changes", start, written)
    else:
        batch = StagedBatch(export, "snapshot", None, stage_snapshot(spark, session, export))
    _fire(hooks.after_staging, export, session)
    return batch


def delete_rows(session: SqlSession, batch: StagedBatch) -> int:
    """Staged 'D' keys go; after a snapshot, every key the snapshot lacks. Returns the count.

    Served entities delete nothing: silver is append-only, and a parent row must not go while
    served children still reference it."""
    export = batch.export
    if export.served is not None:
        return 0
    delete = session.dialect.delete_missing if batch.mode == "snapshot" else session.dialect.delete_staged
    return max(session.execute(delete(export.gold.name, export.staging, export.gold.key_columns)), 0)


def refuse_null_keys(session: SqlSession, export: TableExport) -> None:
    """A database primary key cannot hold NULL: such gold rows stop the export."""
    keys = export.gold.key_columns
    nulls = int(session.scalar(session.dialect.null_keys(export.staging, keys)))
    if nulls:
        raise ExportError(
            f"gold table {export.gold.name!r} at Delta version {export.version.version} has {nulls} row(s) with "
            f"NULL in its key {keys}; a database primary key cannot hold NULL. Fix the gold rows "
            "(usually a lookup that found no dimension row) and export again"
        )


def commit_staged(session: SqlSession, batch: StagedBatch, hooks: ExportHooks) -> RowCounts:
    """Step 4, the one transaction: delete, upsert, ledger row, discard the staging table."""
    dialect, export = session.dialect, batch.export
    gold, version = export.gold, export.version
    with session.transaction():
        refuse_null_keys(session, export)
        staged = dict(session.query(dialect.staged_counts(export.staging, gold.key_columns)))
        deleted = delete_rows(session, batch)
        # A served row whose parent is not served would break its FOREIGN KEY: withheld, counted.
        orphans = int(session.scalar(dialect.orphan_keys(export.staging, gold.key_columns, export.parents))) if export.parents else 0
        session.execute(dialect.upsert(gold.name, export.staging, export.column_names, gold.key_columns, export.parents))
        upserted = int(staged.get("U", 0)) - orphans
        entry = LedgerEntry(
            gold.name, version.table_id, version.version, batch.from_version, batch.mode, upserted, deleted,
            exported_at=datetime.now(UTC),
        )
        session.execute(*dialect.insert_ledger(entry))
        session.execute(dialect.discard_staging(export.staging))
        _fire(hooks.before_commit, export, session)
    leftover = dialect.after_commit(export.staging)
    if leftover is not None:
        session.execute(leftover)
    return RowCounts(upserted, deleted, orphans)


def export_table(
    spark: SparkSession,
    cfg: ExportConfig,
    gold: GoldTable,
    session: SqlSession,
    target: str,
    hooks: ExportHooks | None = None,
) -> ExportResult:
    """Bring one target table up to the current gold version (the steps of the module docstring).

    Args:
        spark: the session.
        cfg: export configuration (scenario, data root).
        gold: the gold table to export.
        session: an open session on the target, holding the export lock.
        target: the target's name (`postgres` or `mysql`), for results and hooks.
        hooks: optional callbacks at fixed points (tests).
    """
    hooks = hooks or ExportHooks()
    began = time.monotonic()
    check_names(gold)
    version = gold_version(spark, cfg.table("gold", gold.name), gold.name)
    export = TableExport(gold, target, version, sql_columns(read_schema(spark, version), gold), write_mode=cfg.write_mode)
    return _bring_up_to_date(spark, session, export, hooks, began)


def serve_entity(
    spark: SparkSession,
    served: ServedTable,
    version: GoldVersion,
    session: SqlSession,
    target: str,
    hooks: ExportHooks | None = None,
    write_mode: Literal["batch", "row"] = "batch",
) -> ExportResult:
    """Bring one served silver entity's table up to `version` of its silver table: the rows new
    since the version the ledger holds (a full snapshot the first time, or after a reprocess),
    staged and committed in one transaction with the ledger row, as for gold. Rows whose
    foreign key finds no parent in the target are withheld and counted (`orphans`)."""
    hooks = hooks or ExportHooks()
    began = time.monotonic()
    check_identifier(served.name, "served entity name")
    export = TableExport(
        served, target, version, served_columns(read_schema(spark, version), served), served, write_mode=write_mode
    )
    return _bring_up_to_date(spark, session, export, hooks, began)


def _bring_up_to_date(
    spark: SparkSession, session: SqlSession, export: TableExport, hooks: ExportHooks, began: float
) -> ExportResult:
    """Stage and commit, in one transaction with its ledger row, what the target lacks of
    `export.version` (nothing when the ledger already holds that version)."""
    name, version = export.gold.name, export.version
    previous = target_position(session, export)
    if previous == version.position:
        return ExportResult(name, export.target, "skipped", version.version, None, 0, 0, time.monotonic() - began)
    batch = stage(spark, session, export, previous, hooks)
    counts = commit_staged(session, batch, hooks)
    return ExportResult(
        name, export.target, batch.mode, version.version, batch.from_version, counts.upserted, counts.deleted,
        time.monotonic() - began, orphans=counts.orphans, rows_written=batch.written.rows,
        write_seconds=batch.written.seconds, write_mode=export.write_mode,
    )


def pin_served_versions(spark: SparkSession, cfg: ExportConfig, served: list[ServedTable]) -> dict[str, GoldVersion]:
    """The silver version of every served entity, read children first.

    Silver accepts a child row only once its parent is in silver, and never removes a row, so
    a parent version read after the child's holds every parent the child's rows name: the
    foreign keys of one export's rows are complete even while the pipeline keeps appending."""
    pinned: dict[str, GoldVersion] = {}
    for table in reversed(served):
        pinned[table.name] = gold_version(spark, cfg.table("silver", table.name), table.name, "silver")
    return pinned


def create_views(session: SqlSession, scenario: Scenario, served: list[ServedTable], target: str) -> ExportResult:
    """CREATE OR REPLACE the scenario's catalogue views and the orphan check, one transaction
    (PostgreSQL; MySQL commits each view by itself)."""
    began = time.monotonic()
    dialect = session.dialect
    statements: list[tuple[str, str]] = [
        (name, dialect.create_view(name, view_select(dialect, name))) for name in scenario.export.views
    ]
    with_keys = [(t.name, t.key, t.foreign_keys) for t in served if t.foreign_keys]
    if with_keys:
        statements.append((ORPHAN_VIEW, dialect.create_view(ORPHAN_VIEW, orphan_select(dialect, with_keys))))
    with session.transaction():
        for _name, sql in statements:
            session.execute(sql)
    names = tuple(name for name, _ in statements)
    return ExportResult("views", target, "views", 0, None, 0, 0, time.monotonic() - began, views=names)


def export_gold(
    spark: SparkSession,
    cfg: ExportConfig,
    connections: Mapping[str, Connection] | None = None,
    hooks: ExportHooks | None = None,
    on_result: Callable[[ExportResult], None] | None = None,
) -> list[ExportResult]:
    """Export every table of `scenario.export_tables` into every target of `cfg.targets`.

    Args:
        spark: the session.
        cfg: export configuration; `cfg.targets` names the targets (`postgres`, `mysql`).
        connections: resolved connections per target; None resolves configured servers
            (environment or scenario, see the module docstring).
        hooks: optional callbacks at fixed points of the export (tests).
        on_result: called with each result right after its transaction committed, so a later
            failure cannot hide what already reached a database.

    Returns:
        One result per (target, table), in that order.

    Raises:
        ConfigError: a target has no connection.
        IdentifierError: a table or column name is outside the allowlist.
        ExportError / DatabaseError: the export could not complete (the failed batch left its
            target unchanged); the one-line message names the failed target and every
            (table -> target) that committed before it.
    """
    targets = list(dict.fromkeys(cfg.targets))
    if connections is None:
        connections = resolve_connections(cfg.scenario.export, targets)
    missing = [t for t in targets if t not in connections]
    if missing:
        raise ConfigError("export", [f"no connection for target(s) {missing}; pass them in `connections`"])
    tables = [cfg.scenario.gold_table(name) for name in cfg.scenario.export_tables]
    served = served_tables(cfg.scenario)
    pinned = pin_served_versions(spark, cfg, served) if served else {}
    results: list[ExportResult] = []

    def done(result: ExportResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for target in targets:
        try:
            with connect(connections[target]) as session, export_lock(session):
                for gold in tables:
                    done(export_table(spark, cfg, gold, session, target, hooks))
                for table in served:  # parents first
                    done(serve_entity(spark, table, pinned[table.name], session, target, hooks, cfg.write_mode))
                if served:
                    done(create_views(session, cfg.scenario, served, target))
        except DatabaseError as exc:
            raise type(exc)(_failure_message(target, exc, results)) from None
    return results


def _failure_message(target: str, exc: DatabaseError, results: list[ExportResult]) -> str:
    done = [f"{r.table} -> {r.target}" for r in results if r.mode not in ("skipped", "views")]
    current = [f"{r.table} -> {r.target}" for r in results if r.mode == "skipped"]
    parts = [f"export to {target} failed: {exc}"]
    if done:
        parts.append(f"committed before the failure: {', '.join(done)}")
    if current:
        parts.append(f"already up to date: {', '.join(current)}")
    if done or current:
        parts.append("a rerun skips what is committed and exports the rest exactly once")
    return "; ".join(parts)


def run(
    spark: SparkSession,
    cfg: ExportConfig,
    connections: Mapping[str, Connection] | None = None,
    hooks: ExportHooks | None = None,
) -> None:
    """Job entry point (house style): export gold into the configured or given targets."""
    export_gold(spark, cfg, connections, hooks)


# --- entry points ---------------------------------------------------------------------------


def run_export(cfg: ExportConfig, session: SessionOptions, hooks: ExportHooks | None = None) -> list[ExportResult]:
    """`medallion export` as a library call: export into the configured servers (see the module
    docstring), printing each server, then each result as soon as it committed, so a failure of
    a later target leaves the earlier ones on stdout. `hooks` are for tests (crash points)."""
    # Resolve before Spark starts: a missing URL or password fails in a blink.
    connections = resolve_connections(cfg.scenario.export, cfg.targets)
    for target, connection in connections.items():
        print(f"[export] {target}: {connection}", flush=True)
    spark = build_session(session)
    results = export_gold(spark, cfg, connections, hooks, on_result=lambda r: print(f"[export] {r.describe()}", flush=True))
    for line in write_summary(results):
        print(f"[export] {line}", flush=True)
    return results


def write_summary(results: list[ExportResult]) -> list[str]:
    """Per target: rows staged, rows/s and mean write time per row over the whole export."""
    lines = []
    for target in dict.fromkeys(r.target for r in results):
        mine = [r for r in results if r.target == target and r.rows_written]
        rows, seconds = sum(r.rows_written for r in mine), sum(r.write_seconds for r in mine)
        if rows and seconds > 0:
            total = ExportResult("all tables", target, "snapshot", 0, None, 0, 0, seconds, rows_written=rows,
                                 write_seconds=seconds, write_mode=mine[0].write_mode)
            lines.append(f"{target}: staged {rows} rows in {seconds:.2f}s: {total.write_rate()}")
    return lines


def main() -> None:
    """spark-submit entry point."""
    parser = argparse.ArgumentParser(prog="spark_jobs/export.py", description="medallion export job", allow_abbrev=False)
    add_scenario_options(parser)
    add_target_option(parser)
    add_write_mode_option(parser)
    add_master_option(parser)
    args = parser.parse_args()
    try:
        cfg = export_config(
            args.scenario, args.data, profile=args.profile, targets=export_kinds(args.target), write_mode=args.write_mode
        )
        run_export(cfg, options_from_args("medallion-export", args))
    except MedallionError as exc:
        print(f"medallion export: error: {exc}", flush=True)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
