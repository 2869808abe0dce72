"""Retention for a data root left running (`medallion retention`, docs/design.md): what is older
than a configurable age and no longer needed goes.

- Landing files already in bronze (their batch id is in the bronze table) whose modification
  time is older than the age. Only regular files with landing names, inside the data root; the
  manifests (the ledger) stay. `medallion verify` recomputes from landing files, so batches
  cleaned here can no longer be verified: choose an age longer than you verify after.
- Files of every Delta table of the lake no longer referenced by a version newer than the age:
  `VACUUM ... RETAIN <hours> HOURS`. Time travel and the export's change feed cannot reach
  before that age afterwards (export then reads a snapshot, as on its first run).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medallion.contracts.layout import DataRoot, parse_landing_name
from medallion.contracts.scenario import Scenario

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Delta refuses VACUUM below its own 7-day default unless this check is off; the age is the
# user's explicit choice here.
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


@dataclass(frozen=True)
class RetentionResult:
    landing_files_deleted: int
    tables_vacuumed: int
    data_files_deleted: int

    def line(self) -> str:
        return (f"[retention] {self.landing_files_deleted} landing files deleted, "
                f"{self.tables_vacuumed} Delta tables vacuumed, {self.data_files_deleted} data files deleted")


def delta_tables(data: DataRoot) -> list[Path]:
    """Every Delta table of the lake (a folder with a `_delta_log`), checkpoints left out."""
    lake = data.resolve_inside(data.lake)
    if not lake.is_dir():
        return []
    found = []
    for root, dirs, _files in os.walk(lake):
        dirs[:] = sorted(d for d in dirs if not d.startswith("_checkpoints") and not d.startswith("_spark_events"))
        if "_delta_log" in dirs:
            found.append(Path(root))
            dirs[:] = []  # a table's own folders hold no tables
    return found


def _data_files(table: Path) -> int:
    return sum(1 for root, _dirs, files in os.walk(table) if "_delta_log" not in root
               for name in files if name.endswith(".parquet"))


def bronze_batches(spark: SparkSession, data: DataRoot, entity: str) -> set[int]:
    """Batch ids that reached an entity's bronze table (none before its first micro-batch)."""
    table = data.table("bronze", entity)
    if not (table / "_delta_log").is_dir():
        return set()
    rows = spark.read.format("delta").load(str(table)).select("_batch_id").distinct().collect()
    return {int(row[0]) for row in rows if row[0] is not None}


def clean_landing(data: DataRoot, entity: str, ingested: set[int], older_than: float) -> int:
    """Delete the entity's landing files of ingested batches last modified before `older_than`
    (epoch seconds); returns how many."""
    folder = data.landing_dir(entity)
    if not folder.is_dir():
        return 0
    folder = data.resolve_inside(folder)
    deleted = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            parsed = parse_landing_name(entry.name)
            # Regular files only (never a link), with this entity's landing name.
            if parsed is None or parsed[0] != entity or not entry.is_file(follow_symlinks=False):
                continue
            if parsed[1] in ingested and entry.stat(follow_symlinks=False).st_mtime < older_than:
                os.unlink(entry.path)
                deleted += 1
    return deleted


def run_retention(spark: SparkSession, scenario: Scenario, data: DataRoot, hours: float) -> RetentionResult:
    """One pass: landing files, then VACUUM of every Delta table, both with the same age."""
    from delta.tables import DeltaTable  # with Spark, not when the CLI merely parses arguments

    if hours < 0:
        raise ValueError(f"retention age must be 0 hours or more, got {hours}")
    cutoff = time.time() - hours * 3600
    landing = 0
    for entity in scenario.processing_order:
        landing += clean_landing(data, entity, bronze_batches(spark, data, entity), cutoff)
    previous = spark.conf.get(RETENTION_CHECK, "true")
    spark.conf.set(RETENTION_CHECK, "false")
    tables, removed = 0, 0
    try:
        for table in delta_tables(data):
            before = _data_files(table)
            # delta-spark's own API: the path is passed as a value, never spliced into SQL text.
            DeltaTable.forPath(spark, str(table)).vacuum(hours)
            tables += 1
            removed += max(0, before - _data_files(table))
    finally:
        spark.conf.set(RETENTION_CHECK, previous or "true")
    return RetentionResult(landing, tables, removed)


def retain_forever(
    run_pass: Callable[[], RetentionResult], every: float, stopping: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run a pass every `every` seconds until `stopping()`; returns the number of passes."""
    passes = 0
    while not stopping():
        print(run_pass().line(), flush=True)
        passes += 1
        waited = 0.0
        while waited < every and not stopping():
            sleep(min(1.0, every - waited))
            waited += 1.0
    return passes
