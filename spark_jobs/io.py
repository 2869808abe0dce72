"""Reading and writing for the jobs: landing file streams, Delta streams and idempotent writes.

Transforms live in the job modules; this module is the only one that touches storage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StructType

from spark_jobs.config import PipelineConfig

BatchFunction = Callable[[DataFrame, int], None]

# A Delta version file: a commit (00000000000000000000.json) or a checkpoint of one.
_VERSION_FILE = re.compile(r"^\d{20}\.(json|checkpoint\b.*\.parquet)$")
# A table holding this many data files or more is compacted (OPTIMIZE) by its writer: silver,
# quarantine and gold after each micro-batch, bronze, quality and metrics after each pass.
COMPACT_MIN_FILES = 20


def read_landing_stream(spark: SparkSession, cfg: PipelineConfig, entity: str) -> DataFrame:
    """Every landed line of an entity as one row: `value` (raw bytes kept) + `_source_file`.

    The text source in line mode keeps invalid UTF-8 bytes as they are (splitting a whole file
    in Spark would replace them), and it skips `.`-prefixed temporary names.
    """
    landing = cfg.data.landing_dir(entity)
    landing.mkdir(parents=True, exist_ok=True)
    return (
        spark.readStream.format("text")
        .option("pathGlobFilter", "*.jsonl")
        .option("maxFilesPerTrigger", cfg.scenario.pipeline.max_files_per_trigger)
        .load(str(landing))
        .select(F.col("value"), F.col("_metadata.file_path").alias("_source_file"))
    )


def read_delta_stream(spark: SparkSession, path: str, max_files_per_trigger: int | None = None) -> DataFrame:
    """A Delta table as a stream of its appended rows (compaction commits are skipped).

    A query on a new checkpoint starts from the table's current snapshot, which Delta computes
    with Spark jobs (1.2-1.7 s per query here, measured). While every file the table ever added
    is still in it, reading its commits from version 0 yields the same rows without that.
    """
    reader = spark.readStream.format("delta")
    if max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", max_files_per_trigger)
    if has_only_appends(path):
        reader = reader.option("startingVersion", 0)  # used by a new checkpoint only
    return reader.load(path)


def has_only_appends(path: str, max_commits: int = 50) -> bool:
    """Whether a local table's log still starts at version 0 and no commit removed a file
    (no compaction, delete or overwrite: all its data files are still live and on disk).
    Tables with more than `max_commits` commits are not read through; they answer False."""
    delta_log = _local_delta_log(path)
    commits = _commit_names(delta_log)
    if not commits or len(commits) > max_commits or not commits[-1].name.startswith("0" * 20):
        return False
    for commit in commits:
        try:
            with open(commit.path, "rb") as actions:
                if any("remove" in json.loads(line) for line in actions if line.strip()):
                    return False
        except (OSError, ValueError):
            return False
    return True


def _local_delta_log(path: str) -> Path | None:
    """The `_delta_log` folder of a table on the local disk; None for a URI (left to Delta)."""
    if "://" in path:
        return None
    return Path(path.removeprefix("file:")) / "_delta_log"


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table with at least one commit is at `path`.

    For a local path this looks for a commit on disk: `DeltaTable.isDeltaTable` answers from
    the session's cached log, which it does not refresh, so a table first looked at while
    another process was creating it would stay "missing" for that session.
    """
    if _local_delta_log(path) is None:
        return bool(DeltaTable.isDeltaTable(spark, path))
    return table_state(path) is not None


def read_delta(spark: SparkSession, path: str) -> DataFrame | None:
    """A Delta table's current snapshot, or None when it does not exist yet."""
    if not is_delta_table(spark, path):
        return None
    return spark.read.format("delta").load(path)


def ensure_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    properties: dict[str, str] | None = None,
) -> DeltaTable:
    """Create an empty Delta table with this schema (and properties) unless it exists."""
    discard_unborn_log(path)
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    return builder.execute()


def discard_unborn_log(path: str) -> None:
    """Remove a `_delta_log` that holds no version yet: a creation killed before its first commit.

    Such a folder is not a table (no commit, so no data either), yet Delta's createIfNotExists
    refuses it with DELTA_TABLE_NOT_FOUND, so a pipeline killed at that moment could never
    restart. Local paths only.
    """
    delta_log = _local_delta_log(path)
    if delta_log is None:
        return
    if delta_log.is_dir() and not any(_VERSION_FILE.match(entry.name) for entry in delta_log.iterdir()):
        print(f"[delta] {delta_log}: no commit yet (a creation was interrupted); removed", flush=True)
        shutil.rmtree(delta_log)


def landing_state(cfg: PipelineConfig, entity: str) -> Hashable:
    """Every file in an entity's landing folder with its size and mtime: changes when one lands."""
    folder = cfg.data.landing_dir(entity)
    files = set()
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:  # a temporary file, renamed in the meantime
                continue
            files.add((os.path.relpath(path, folder), stat.st_size, stat.st_mtime_ns))
    return frozenset(files)


def _commit_names(delta_log: Path | None) -> list[os.DirEntry[str]]:
    """The commit files of a local log (not checkpoints or checksums), newest first; none for a
    table that is not on the local disk (`delta_log` None)."""
    if delta_log is None:
        return []
    try:
        with os.scandir(delta_log) as entries:
            commits = [e for e in entries if e.name.endswith(".json") and _VERSION_FILE.match(e.name)]
    except FileNotFoundError:
        return []
    return sorted(commits, key=lambda e: e.name, reverse=True)


def _checksum(delta_log: Path, commit_name: str) -> dict[str, Any] | None:
    """The checksum file (`.crc`) Delta wrote with a commit, parsed; None if there is none."""
    try:
        checksum = json.loads((delta_log / commit_name.replace(".json", ".crc")).read_text())
    except (OSError, ValueError):
        return None
    return checksum if isinstance(checksum, dict) else None


def table_state(path: str) -> tuple[str, int] | None:
    """A local Delta table's latest commit (file name and mtime); None when unknown."""
    delta_log = _local_delta_log(path)
    commits = _commit_names(delta_log)
    if not commits:
        return None
    return commits[0].name, commits[0].stat().st_mtime_ns


def data_file_count(spark: SparkSession, path: str) -> int | None:
    """Data files in a table's current version (None when there is no table): from the checksum
    file Delta writes with each commit when the table is on the local disk (no Spark job), else
    from its details."""
    # One listing of a local log answers both "is there a table" and "which commit".
    delta_log, latest = _local_delta_log(path), table_state(path)
    if delta_log is not None and latest is not None:
        checksum = _checksum(delta_log, latest[0])
        if checksum is not None and "numFiles" in checksum:
            return int(checksum["numFiles"])
        # no checksum for that commit (e.g. a crash right after it): ask Delta
    if not is_delta_table(spark, path):
        return None
    return int(DeltaTable.forPath(spark, path).detail().collect()[0]["numFiles"])


def compact_small_files(spark: SparkSession, paths: list[str], min_files: int = COMPACT_MIN_FILES) -> list[str]:
    """OPTIMIZE every table that holds `min_files` data files or more; returns those compacted.

    This replaces Delta's auto-compaction, whose post-commit hook rebuilds a table's file list
    on the first write to it in each process (about 1 s per table here, measured), while the
    count needed to decide is in the commit's checksum file. Compaction commits change no data,
    so the streams that read these tables skip them.
    """
    compacted = []
    for path in paths:
        files = data_file_count(spark, path)
        if files is not None and files >= min_files:
            DeltaTable.forPath(spark, path).optimize().executeCompaction()
            print(f"[delta] {path}: {files} data files compacted", flush=True)
            compacted.append(path)
    return compacted


def app_id(checkpoint: str) -> str:
    """A stable id per checkpoint for its idempotent writes (`append_idempotent`).

    Stored beside the checkpoint, so a restart reuses it and a fresh checkpoint gets a new one
    (reusing an id with a new checkpoint would skip its writes silently).
    """
    folder = Path(checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    id_file = folder / "_medallion_app_id"
    if not id_file.exists():
        tmp = folder / f".app_id.{uuid.uuid4().hex}"
        tmp.write_text(uuid.uuid4().hex)
        tmp.replace(id_file)
    return id_file.read_text().strip()


# Delta's own txnAppId/txnVersion write options answer "was this batch written already?" by
# rebuilding the table's whole state first: three Spark jobs on every append, 1.2 s against
# 0.3 s for a 5-row append here (measured). The answer is in the newest commits, so on a local
# table each write names its (app id, batch id) in the commit's userMetadata and the check reads
# the log back to the app's latest commit. A table elsewhere (a URI) keeps Delta's options.
_TXN_MARKER = "medallion_txn"


def _marker_of(commit_text: str) -> tuple[str, int] | None:
    """The (app id, batch id) a commit names in its userMetadata, if it names one."""
    for line in commit_text.splitlines():
        if line.startswith('{"commitInfo"'):
            metadata = json.loads(line)["commitInfo"].get("userMetadata") or ""
            try:  # someone else's userMetadata may be any text
                marker = json.loads(metadata).get(_TXN_MARKER) if metadata.startswith("{") else None
                return (str(marker["app"]), int(marker["version"])) if isinstance(marker, dict) else None
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def _checksum_transactions(delta_log: Path, commit_name: str, txn_app_id: str) -> list[int]:
    """The versions Delta's own SetTransactions record for an app id, from a commit's checksum."""
    transactions = (_checksum(delta_log, commit_name) or {}).get("setTransactions") or []
    return [int(t["version"]) for t in transactions if t.get("appId") == txn_app_id and "version" in t]


def delta_sink_version(checkpoint: str, path: str) -> int:
    """The last batch Delta's streaming sink appended to a local table from this checkpoint
    (it records them under the query id, kept in the checkpoint's `metadata`); -1 for none."""
    try:
        query_id = json.loads((Path(checkpoint) / "metadata").read_text())["id"]
    except (OSError, ValueError, KeyError):
        return -1  # a fresh checkpoint (or none): the sink never wrote from it
    delta_log = _local_delta_log(path)
    commits = _commit_names(delta_log)
    if delta_log is None or not commits:
        return -1
    return max(_checksum_transactions(delta_log, commits[0].name, query_id), default=-1)


def committed_version(path: str, txn_app_id: str) -> int | None:
    """The highest batch id `txn_app_id` has appended to a local table, -1 for none; None when
    the table is not on the local disk. A SetTransaction recorded by Delta's own options (the
    newest checksum lists them) counts too.

    Only the app's last write matters (a replay is of the batch after its last complete one),
    and Delta keeps commits for 30 days (`delta.logRetentionDuration`): a batch left half-done by
    a crash is recognised if the pipeline restarts within that time."""
    delta_log = _local_delta_log(path)
    if delta_log is None:
        return None
    commits = _commit_names(delta_log)
    if not commits:
        return -1
    recorded = _checksum_transactions(delta_log, commits[0].name, txn_app_id)
    needle = json.dumps(txn_app_id)[1:-1]
    for commit in commits:  # the app writes in batch id order: its latest commit is enough
        text = Path(commit.path).read_text(encoding="utf-8")
        marker = _marker_of(text) if needle in text else None
        if marker is not None and marker[0] == txn_app_id:
            return max([marker[1], *recorded])
    return max(recorded, default=-1)


def append_idempotent(df: DataFrame, path: str, txn_app_id: str, txn_version: int) -> bool:
    """Append once per (app id, batch id): a replayed micro-batch's second write is skipped.
    Returns whether it wrote."""
    writer = _appender(df)
    committed = committed_version(path, txn_app_id)
    if committed is None:
        writer.option("txnAppId", txn_app_id).option("txnVersion", txn_version).save(path)
        return True
    if committed >= txn_version:
        return False
    writer.option("userMetadata", json.dumps({_TXN_MARKER: {"app": txn_app_id, "version": txn_version}})).save(path)
    return True


def append(df: DataFrame, path: str) -> None:
    """A plain append, for rows written once by design (e.g. progress metrics)."""
    _appender(df).save(path)


def _appender(df: DataFrame) -> DataFrameWriter:
    """An append to a Delta table whose schema the rows must match (no silent evolution)."""
    return df.write.format("delta").mode("append").option("mergeSchema", "false")


def materialize(df: DataFrame) -> DataFrame:
    """`df` computed once and held in memory (spilling to disk), its plan cut off.

    Unlike `persist`, the result no longer names the tables it was computed from: appending it
    to one of them (silver's rows, deduplicated against silver) is then a blind append, where
    Delta would otherwise list the table's files again to record what the write read (1-1.5 s
    per append here, measured). Free it with `release`.
    """
    return df.localCheckpoint(eager=True)


def release(df: DataFrame) -> None:
    """Free the blocks of a DataFrame returned by `materialize` now, not at a later JVM GC."""
    df._jdf.queryExecution().analyzed().rdd().unpersist(False)


# Every query runs availableNow: it processes what is there, then stops (`--continuous` repeats
# ordered runs, see spark_jobs.lifecycle.run_cycles).


def start_batches(df: DataFrame, name: str, checkpoint: str, function: BatchFunction) -> StreamingQuery:
    """Run `function(batch_df, batch_id)` for each micro-batch (at least once per batch id)."""
    writer = df.writeStream.queryName(name).option("checkpointLocation", checkpoint)
    return writer.trigger(availableNow=True).foreachBatch(function).start()
