"""`medallion reprocess`: rebuild silver, quarantine, quality and gold from bronze, exactly once.

After a rule change (a range, an enum, an expectation) the rows already promoted were classified
by the old rules. Bronze holds every landed line as read, so the derived tables can be rebuilt
from it: remove them and their streaming checkpoints, then run the pipeline's own silver and
gold layers once. Bronze, landing and the manifests are never touched.

Crash safety: `lake/_reprocess.json` is written (fsynced) before anything is removed and deleted
only after the rebuild finished. While it is there every pipeline refuses to start
(`lifecycle.refuse_while_reprocess_pending`), and running reprocess again redoes the removal and
the whole rebuild. A table or checkpoint is first moved into `lake/_reprocess_trash` by one
rename, then deleted there: a crash mid-deletion leaves either the whole table in place or
pieces in the trash, which the next run clears, never a half-deleted table that no longer looks
like one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from medallion.contracts.errors import PipelineError, UnsafePathError
from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import write_json_atomic
from spark_jobs import pipeline, sql_guard, storage
from spark_jobs.config import PipelineConfig, pipeline_config
from spark_jobs.lifecycle import STOP, CheckpointLock, GracefulStop, rebuilding
from spark_jobs.session import SessionOptions, build_session

REBUILT_LAYERS = ("silver", "gold")
# What Spark's streaming checkpoints and storage.app_id put in a checkpoint folder; `.`-names
# are their temporaries and checksums.
_CHECKPOINT_ENTRIES = frozenset({"metadata", "offsets", "commits", "sources", "state", "_medallion_app_id"})


@dataclass
class ReprocessResult:
    """What a reprocess did: what it removed, the rows of each rebuilt table, how long it took."""

    removed: list[str] = field(default_factory=list)  # paths relative to lake/
    rows: dict[str, int] = field(default_factory=dict)  # table (relative to lake/) -> rows
    seconds: float = 0.0
    resumed_from: str | None = None  # started_at of an interrupted reprocess this run finished
    pipeline: pipeline.PipelineResult | None = None


def rebuilt_tables(cfg: PipelineConfig) -> list[Path]:
    """The tables a reprocess rebuilds, in the order they are listed: silver and quarantine per
    entity (processing order), quality, gold."""
    entities = cfg.scenario.processing_order
    return [
        *(Path(cfg.table(layer, name)) for name in entities for layer in ("silver", "quarantine")),
        Path(cfg.quality_table),
        *(Path(cfg.table("gold", g.name)) for g in cfg.scenario.gold),
    ]


def rebuilt_checkpoints(cfg: PipelineConfig) -> list[Path]:
    """The streaming checkpoints of the rebuilt layers: silver per entity, gold per table."""
    return [
        *(Path(cfg.checkpoint("silver", name)) for name in cfg.scenario.processing_order),
        *(Path(cfg.checkpoint("gold", g.name)) for g in cfg.scenario.gold),
    ]


def _refuse(path: Path, what: str) -> UnsafePathError:
    return UnsafePathError(
        f"{path} {what}; reprocess deletes only the tables and checkpoints medallion wrote: "
        "move it out of the data root, then run `medallion reprocess` again"
    )


def _checked(data: DataRoot, path: Path) -> Path:
    """`path` itself, once it is known to be a real folder inside the data root (never a link)."""
    data.resolve_inside(path.parent)
    if path.is_symlink():
        raise _refuse(path, "is a symbolic link")
    if not path.is_dir():
        raise _refuse(path, "is not a folder")
    return path


def _is_delta_table(path: Path) -> bool:
    log = path / "_delta_log"
    return log.is_dir() and not log.is_symlink()


def _is_checkpoint(path: Path) -> bool:
    return all(name in _CHECKPOINT_ENTRIES or name.startswith(".") for name in os.listdir(path))


def doomed(cfg: PipelineConfig) -> list[Path]:
    """The rebuilt tables and checkpoints present now, each checked to be what reprocess may
    delete: inside the data root, not a link, a Delta table (a `_delta_log` folder) or a
    checkpoint folder (Spark's entries only); an empty folder also passes. Else UnsafePathError."""
    found = []
    for path in rebuilt_tables(cfg):
        if os.path.lexists(path):
            if not (_is_delta_table(_checked(cfg.data, path)) or not os.listdir(path)):
                raise _refuse(path, "is not a Delta table (no _delta_log folder)")
            found.append(path)
    for path in rebuilt_checkpoints(cfg):
        if os.path.lexists(path):
            if not _is_checkpoint(_checked(cfg.data, path)):
                raise _refuse(path, "holds files a streaming checkpoint does not")
            found.append(path)
    return found


def _clear_trash(data: DataRoot) -> None:
    """Delete what an earlier, interrupted reprocess moved into the trash (reprocess alone
    writes there)."""
    trash = data.reprocess_trash
    if not os.path.lexists(trash):
        return
    if trash.is_symlink() or not trash.is_dir():
        raise _refuse(trash, "is not a folder (a link or a file)")
    data.resolve_inside(trash)
    shutil.rmtree(trash)


def remove_rebuilt(cfg: PipelineConfig) -> list[str]:
    """Delete the rebuilt tables and checkpoints (see `doomed`); returns them relative to lake/.

    Each is moved into the trash by one rename, then the trash is deleted: a crash leaves every
    table either whole where it was or in the trash, which the next call clears first.
    """
    data = cfg.data
    _clear_trash(data)
    removed = []
    for path in doomed(cfg):
        relative = path.relative_to(data.lake)
        target = data.reprocess_trash / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
        removed.append(relative.as_posix())
    _clear_trash(data)
    return removed


def write_marker(cfg: PipelineConfig) -> None:
    """Record (fsynced) that a reprocess is under way, before anything is removed."""
    write_json_atomic(cfg.data.reprocess_marker, {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": cfg.scenario.name,
        "profile": cfg.scenario.profile,
        "tables": [p.relative_to(cfg.data.lake).as_posix() for p in rebuilt_tables(cfg)],
    })


def read_marker(data: DataRoot) -> dict[str, object] | None:
    """The marker of a reprocess that has not finished, or None."""
    if not os.path.lexists(data.reprocess_marker):
        return None
    try:
        marker = json.loads(data.reprocess_marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # cut short while written is impossible (atomic), but a hand edit is not
    return marker if isinstance(marker, dict) else {}


def _require_bronze(cfg: PipelineConfig) -> None:
    missing = [name for name in cfg.scenario.processing_order if storage.table_state(cfg.table("bronze", name)) is None]
    if missing:
        raise PipelineError(
            f"no bronze table for {', '.join(missing)} under {cfg.data.lake}; reprocess rebuilds from "
            "bronze: run `medallion pipeline` first"
        )


def run(spark: SparkSession, cfg: PipelineConfig, stop: GracefulStop = STOP) -> ReprocessResult:
    """Remove silver, quarantine, quality and gold with their checkpoints, and rebuild them from
    bronze with the pipeline's silver and gold layers (`--once`). Hold the data root's
    CheckpointLock around it (`run_reprocess` does)."""
    began = time.perf_counter()
    storage.check_data_root(cfg)
    sql_guard.check_scenario(spark, cfg.scenario)  # a bad rule fails before anything is removed
    result = ReprocessResult()
    marker = read_marker(cfg.data)
    if marker is not None:
        started = marker.get("scenario")
        if started not in (None, cfg.scenario.name):
            raise PipelineError(
                f"{cfg.data.reprocess_marker}: a reprocess of scenario {started!r} did not finish here; "
                f"run `medallion reprocess --scenario {started}` on this data root to finish it"
            )
        result.resumed_from = str(marker.get("started_at", "at an unknown time"))
        print(f"[reprocess] finishing the reprocess started {result.resumed_from}, which did not end", flush=True)
    else:
        _require_bronze(cfg)
        doomed(cfg)  # refuse a foreign folder before the marker is written
        write_marker(cfg)
    result.removed = remove_rebuilt(cfg)
    print(f"[reprocess] removed {len(result.removed)} tables and checkpoints under {cfg.data.lake}; "
          f"rebuilding {', '.join(REBUILT_LAYERS)} from bronze", flush=True)
    rebuild = pipeline_config(cfg.scenario, cfg.data, once=True, layers=REBUILT_LAYERS)
    with rebuilding(cfg.data):
        result.pipeline = pipeline.run(spark, rebuild, stop)
    if stop.requested.is_set():
        raise PipelineError(
            "stopped before the rebuild finished; the pipeline refuses to run until "
            "`medallion reprocess` is run again on this data root"
        )
    for path in rebuilt_tables(cfg):
        result.rows[path.relative_to(cfg.data.lake).as_posix()] = spark.read.format("delta").load(str(path)).count()
    cfg.data.reprocess_marker.unlink()
    result.seconds = time.perf_counter() - began
    return result


def run_reprocess(cfg: PipelineConfig, session: SessionOptions, stop: GracefulStop | None = None) -> ReprocessResult:
    """`medallion reprocess` as a library call: check the data root, take its checkpoint lock
    (no pipeline may run beside it), start Spark, run (see `run`).

    Args:
        cfg: the scenario (with the changed rules) and data root (`pipeline_config` builds it).
        session: how Spark runs.
        stop: None installs the process-wide SIGTERM/SIGINT handler, as a command wants.
    """
    storage.check_data_root(cfg)  # before the lock file is made in the lake, or Spark starts
    if stop is None:
        stop = STOP.install()
    with CheckpointLock(cfg.data):
        spark = build_session(session)
        return run(spark, cfg, stop)


def report(result: ReprocessResult) -> None:
    """Print what a reprocess did: the tables rebuilt, their rows, the seconds it took."""
    layers = ", ".join(f"{layer} {seconds:.1f}s" for layer, seconds in (result.pipeline.seconds if result.pipeline else {}).items())
    print(f"[reprocess] done in {result.seconds:.1f}s ({layers}); {len(result.rows)} tables rebuilt from bronze:", flush=True)
    width = max((len(name) for name in result.rows), default=0)
    for name, rows in result.rows.items():
        print(f"  {name:<{width}}  {rows:>12,} rows", flush=True)
