"""Reading and writing for the jobs: landing file streams, Delta streams and idempotent writes.

Transforms live in the job modules; this module is the only one that touches storage.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import StructType

from medallion.contracts.errors import PipelineError
from medallion.contracts.layout import LAYERS, parse_landing_name
from medallion.contracts.logs import PIPELINE_LOGGER
from spark_jobs.config import PipelineConfig

log = logging.getLogger(PIPELINE_LOGGER)

BatchFunction = Callable[[DataFrame, int], None]

# A Delta version file: a commit (00000000000000000000.json) or a checkpoint of one.
_VERSION_FILE = re.compile(r"^\d{20}\.(json|checkpoint\b.*\.parquet)$")
# A table holding this many data files or more is compacted (OPTIMIZE) by its writer: silver,
# quarantine and gold after each micro-batch, bronze, quality and metrics after each pass.
COMPACT_MIN_FILES = 20


# Only names of the landing pattern reach Spark's file listing. `screen_landing` moves every
# other entry aside first; this glob is the second line of defence for a file that lands
# between the screen and the listing (Spark's reader fails the whole query on a name holding
# a `:`, e.g. a timestamp, when it builds the name of the file's `.crc` sibling).
LANDING_GLOB = "*-b[0-9][0-9][0-9][0-9][0-9][0-9]-p[0-9][0-9].jsonl"


def read_landing_stream(spark: SparkSession, cfg: PipelineConfig, entity: str) -> DataFrame:
    """Every landed line of an entity as one row: `value` (raw bytes kept) + `_source_file`.

    The text source in line mode keeps invalid UTF-8 bytes as they are (splitting a whole file
    in Spark would replace them), and it skips `.`-prefixed temporary names. Call
    `screen_landing` first: it keeps links and odd names away from Spark's listing.
    """
    landing = cfg.data.resolve_inside(cfg.data.landing_dir(entity))
    landing.mkdir(parents=True, exist_ok=True)
    return (
        spark.readStream.format("text")
        .option("pathGlobFilter", LANDING_GLOB)
        .option("maxFilesPerTrigger", cfg.scenario.pipeline.max_files_per_trigger)
        .load(str(landing))
        .select(F.col("value"), F.col("_metadata.file_path").alias("_source_file"))
    )


# --- the landing screen ------------------------------------------------------------------

REJECTED_DIR = "_rejected"  # under DIR/landing; the file source ignores `_`-prefixed names
REJECTED_REPORT = "rejected.jsonl"
# Why an entry of a landing folder was moved aside instead of read.
OUTSIDE_DATA_ROOT = "outside_data_root"  # a symlink whose target leaves the data root
SYMLINK = "symlink"  # a symlink inside the data root: the target is read from its own place
NOT_A_FILE = "not_a_regular_file"  # a folder, a FIFO, a socket, a device
BAD_FILE_NAME = "bad_file_name"  # not `<entity>-b<batch:06d>-p<part:02d>.jsonl` of this folder


@dataclass(frozen=True)
class Rejected:
    """A landing entry moved aside: where it was, where it is now, and why."""

    entity: str
    name: str
    reason: str
    detail: str
    moved_to: Path


def rejected_dir(cfg: PipelineConfig, entity: str) -> Path:
    """Where `screen_landing` puts the entries of an entity's landing folder it refuses."""
    return cfg.data.landing / REJECTED_DIR / entity


def landing_verdict(cfg: PipelineConfig, entity: str, entry: os.DirEntry[str]) -> tuple[str, str] | None:
    """(reason, detail) when a landing folder entry must not be read; None for a landing file.

    The entry itself is examined (lstat): a link is never followed to decide.
    """
    info = entry.stat(follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):
        target = os.path.realpath(entry.path)
        if not cfg.data.is_inside(entry.path):
            return OUTSIDE_DATA_ROOT, f"a symlink to {target}, outside the data root {cfg.data.root}"
        return SYMLINK, f"a symlink to {target}; landing files must be regular files"
    if not stat.S_ISREG(info.st_mode):
        return NOT_A_FILE, "not a regular file"
    parsed = parse_landing_name(entry.name)
    if parsed is None or parsed[0] != entity:
        return BAD_FILE_NAME, f"expected {entity}-b<batch:6 digits>-p<part:2 digits>.jsonl"
    return None


def screen_landing(cfg: PipelineConfig, entity: str) -> list[Rejected]:
    """Move every entry of an entity's landing folder that is not a landing file aside, into
    DIR/landing/_rejected/<entity>/, and record each in DIR/landing/_rejected/rejected.jsonl.

    Spark then lists only regular files with landing names inside the data root. Such entries
    are moved, not read into quarantine: a link's target is not the project's to copy into the
    lake, a name without a batch id can't be reconciled with the ledger, and a name Spark can't
    open would fail the query anyway. The move renames the entry itself (a link stays a link)
    inside the data root, so nothing of the file was read: the user fixes the name and puts it
    back to have it ingested, once. `.`-prefixed names (files still being written) are left.
    """
    landing = cfg.data.resolve_inside(cfg.data.landing_dir(entity))
    if not landing.is_dir():
        return []
    rejected: list[Rejected] = []
    with os.scandir(landing) as entries:
        found = sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in found:
        try:
            verdict = landing_verdict(cfg, entity, entry)
        except FileNotFoundError:  # renamed or removed in the meantime
            continue
        if verdict is not None:
            rejected.append(_move_aside(cfg, entity, entry, *verdict))
    return rejected


def _move_aside(cfg: PipelineConfig, entity: str, entry: os.DirEntry[str], reason: str, detail: str) -> Rejected:
    folder = cfg.data.resolve_inside(rejected_dir(cfg, entity))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / entry.name
    copy = 0
    while os.path.lexists(target):  # a second file of the same name: keep both
        copy += 1
        target = folder / f"{entry.name}~{copy}"
    os.rename(entry.path, target)  # renames a link itself, never what it points to
    moved = Rejected(entity, entry.name, reason, detail, target)
    record = {"at": datetime.now(UTC).isoformat(), "entity": entity, "file": entry.name, "reason": reason,
              "detail": detail, "moved_to": cfg.data.relative(target.parent) + "/" + target.name}
    with (folder.parent / REJECTED_REPORT).open("a", encoding="utf-8") as report:
        report.write(json.dumps(record) + "\n")
    log.warning("landing %s: %r not ingested (%s: %s); moved to %s", entity, entry.name, reason, detail, target)
    return moved


def check_data_root(cfg: PipelineConfig, entities: list[str] | None = None) -> None:
    """Refuse (UnsafePathError) a landing folder, lake folder, table, `_delta_log` or checkpoint
    whose real path leaves the data root, before any query reads or writes there."""
    data = cfg.data
    names = list(cfg.scenario.entities) if entities is None else entities
    paths: list[Path] = [data.landing, *[data.landing_dir(n) for n in names], data.landing / REJECTED_DIR, data.lake]
    tables = [data.quality, data.metrics]
    for layer in LAYERS:
        paths.append(data.lake / layer)
        tables += [data.table(layer, n) for n in names]
    tables += [data.table("gold", g.name) for g in cfg.scenario.gold]
    for table in tables:
        paths += [table, table / "_delta_log"]
    checkpoints = data.lake / "_checkpoints"
    paths.append(checkpoints)
    if checkpoints.is_dir():
        for job in sorted(checkpoints.iterdir()):
            paths.append(job)
            if job.is_dir() and not job.is_symlink():
                paths += sorted(job.iterdir())
    for path in paths:
        data.resolve_inside(path)


def read_delta_stream(spark: SparkSession, path: str, max_files_per_trigger: int | None = None) -> DataFrame:
    """A Delta table as a stream of its appended rows (compaction commits are skipped).

    A query on a new checkpoint starts from the table's current snapshot, which Delta computes
    with Spark jobs (over a second per query). While every file the table ever added
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
) -> None:
    """Create an empty Delta table with this schema (and properties) unless it exists.

    A pass ensures each of its tables (18 calls for driving); asking Delta (createIfNotExists,
    then the table's schema) cost 25-40 ms each. A local table that exists answers from the
    checksum file of its latest commit instead: its schema is checked the same way.
    """
    known = checksum_schema(path)
    if known is not None:
        require_schema(path, known, schema)
        return
    discard_unborn_log(path)
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    table = builder.execute()
    require_schema(path, table.toDF().schema, schema)


def checksum_schema(path: str) -> StructType | None:
    """A local table's schema as of its latest commit, from the checksum file Delta wrote with
    it (no Spark job); None when the table is not on the local disk, has no commit yet, or
    that commit has no readable checksum (e.g. a crash right after it)."""
    delta_log, latest = _local_delta_log(path), table_state(path)
    if delta_log is None or latest is None:
        return None
    metadata = (_checksum(delta_log, latest[0]) or {}).get("metadata")
    try:
        return StructType.fromJson(json.loads(metadata["schemaString"]))  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def require_schema(path: str, actual: StructType, expected: StructType) -> None:
    """Refuse (PipelineError) a table whose columns differ from what this version writes.

    createIfNotExists keeps an existing table as it is, so a data root written by an older
    medallion (e.g. bronze's `_raw` as text, before it became the line's exact bytes) would
    otherwise fail later, deep in a streaming write. Nullability is not compared.
    """
    have = {f.name: f.dataType.simpleString() for f in actual.fields}
    want = {f.name: f.dataType.simpleString() for f in expected.fields}
    if have == want:
        return
    differ = [f"{name} is {have.get(name, 'missing')}, expected {want.get(name, 'absent')}"
              for name in [*want, *(n for n in have if n not in want)] if have.get(name) != want.get(name)]
    raise PipelineError(
        f"table {path} was written by an older medallion ({'; '.join(differ[:3])}); "
        "rebuild it: delete the data root's lake folder and run the pipeline again (landing data is kept)"
    )


# What Delta leaves in the `_delta_log` of a creation killed before its first commit: its
# temporary files (`.`-prefixed) and bookkeeping folders. Anything else is not ours to remove.
_UNBORN_LOG_ENTRY = re.compile(r"^(\..*|_commits|_staged_commits|_sidecars|\d{20}\.crc)$")


def discard_unborn_log(path: str) -> None:
    """Remove a `_delta_log` that holds no version yet: a creation killed before its first commit.

    Such a folder is not a table (no commit, so no data either), yet Delta's createIfNotExists
    refuses it with DELTA_TABLE_NOT_FOUND, so a pipeline killed at that moment could never
    restart. Local paths only; a log that is a link, or holds anything Delta does not write
    there, is refused (PipelineError) rather than removed.
    """
    delta_log = _local_delta_log(path)
    if delta_log is None or not os.path.lexists(delta_log):
        return
    if delta_log.is_symlink() or not delta_log.is_dir():
        raise PipelineError(f"{delta_log} is not a folder (a link or a file); medallion won't use or remove it: move it away")
    names = [entry.name for entry in os.scandir(delta_log)]
    if any(_VERSION_FILE.match(name) for name in names):
        return
    foreign = [name for name in names if not _UNBORN_LOG_ENTRY.match(name)]
    if foreign:
        raise PipelineError(
            f"{delta_log} holds no Delta commit but other files ({', '.join(sorted(foreign)[:3])}); "
            "medallion won't remove it: move the folder away, then run again"
        )
    log.warning("delta %s: no commit yet (a creation was interrupted); removed", delta_log)
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_ranges(path: str, column: str) -> list[tuple[int, int]] | None:
    """(min, max) of a timestamp column in each data file of a local table's current version, in
    microseconds since the epoch, from the min/max statistics the checksum file of its latest
    commit lists (no Spark job). None when that can't be known exactly: a table elsewhere, no
    checksum or no file list in it, or a file without statistics for the column or with nulls
    in it. Delta keeps these statistics to the millisecond, so each max is widened by one."""
    delta_log, latest = _local_delta_log(path), table_state(path)
    if delta_log is None or latest is None:
        return None
    checksum = _checksum(delta_log, latest[0]) or {}
    files = checksum.get("allFiles")
    if not isinstance(files, list) or len(files) != checksum.get("numFiles"):
        return None
    ranges = []
    try:
        for file in files:
            stats = json.loads(file["stats"])
            if stats["numRecords"] == 0:
                continue
            if stats["nullCount"][column] != 0:
                return None
            low, high = (datetime.fromisoformat(stats[side][column]) for side in ("minValues", "maxValues"))
            ranges.append(((low - _EPOCH) // _MICROSECOND, (high - _EPOCH) // _MICROSECOND + 1000))
    except (KeyError, TypeError, ValueError):
        return None
    return ranges


_MICROSECOND = timedelta(microseconds=1)


def compact_small_files(spark: SparkSession, paths: list[str], min_files: int = COMPACT_MIN_FILES) -> list[str]:
    """OPTIMIZE every table that holds `min_files` data files or more; returns those compacted.

    This replaces Delta's auto-compaction, whose post-commit hook rebuilds a table's file list
    on the first write to it in each process (about a second per table), while the
    count needed to decide is in the commit's checksum file. Compaction commits change no data,
    so the streams that read these tables skip them.
    """
    compacted = []
    for path in paths:
        files = data_file_count(spark, path)
        if files is not None and files >= min_files:
            DeltaTable.forPath(spark, path).optimize().executeCompaction()
            log.info("delta %s: %d data files compacted", path, files)
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
# rebuilding the table's whole state first: three Spark jobs on every append, several times
# the cost of a small append itself. The answer is in the newest commits, so on a local
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
    Delta would otherwise list the table's files again to record what the write read (a second
    or more per append). Free it with `release`.
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
