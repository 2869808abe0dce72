"""A StreamingQueryListener that keeps each micro-batch's progress for `medallion report`.

Progress events arrive on a listener thread; they are buffered and flushed to the Delta table
`lake/_metrics` by the driver's main thread: once when a `--once` run ends, after each pass that
recorded something when continuous (each flush is a Delta commit, 0.3-0.8 s).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from medallion.contracts.logs import MICRO_BATCH, PIPELINE_LOGGER
from spark_jobs import storage
from spark_jobs.config import PipelineConfig
from spark_jobs.schemas import METRICS_SCHEMA


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class ProgressRow(NamedTuple):
    """One micro-batch's progress, field for field as METRICS_SCHEMA (spark_jobs/schemas.py)."""

    query: str
    run_id: str
    batch_id: int
    timestamp: datetime
    num_input_rows: int
    input_rows_per_second: float | None
    processed_rows_per_second: float | None
    trigger_ms: int | None
    add_batch_ms: int | None
    latest_offset_ms: int | None


def _rate(value: float | None) -> float | None:
    return float(value) if value is not None else None


log = logging.getLogger(PIPELINE_LOGGER)


def log_progress(row: ProgressRow) -> None:
    """A micro-batch line for bronze and gold queries (silver's micro-batches log their own,
    with what they wrote and quarantined: see spark_jobs.silver.log_micro_batch)."""
    layer, _, name = row.query.partition("_")
    if layer not in ("bronze", "gold") or not row.num_input_rows:
        return
    written = row.num_input_rows if layer == "bronze" else None  # bronze keeps every line
    log.info(
        "%s %s micro-batch %d: %d rows in, %d ms", layer, name, row.batch_id, row.num_input_rows, row.trigger_ms or 0,
        extra={"event": MICRO_BATCH, "layer": layer, "entity" if layer == "bronze" else "table": name,
               "batch_id": row.batch_id, "rows_in": row.num_input_rows, "rows_written": written,
               "rows_quarantined": 0 if layer == "bronze" else None, "ms": row.trigger_ms, "lag_s": None},
    )


class MetricsRecorder(StreamingQueryListener):
    """Buffers one row per micro-batch: rows, rows/s and durations."""

    def __init__(self) -> None:
        self._rows: list[ProgressRow] = []
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self.started = 0  # queries started so far (the start event reaches listeners synchronously)
        self._all_ended = threading.Condition(self._lock)
        self.flushes = 0

    def onQueryStarted(self, event: Any) -> None:
        with self._lock:
            self._running.add(str(event.id))
            self.started += 1

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        with self._lock:
            self._running.discard(str(event.id))
            self._all_ended.notify_all()

    def wait_for_ended_queries(self, timeout: float = 10.0) -> bool:
        """Wait until the listener has heard every query it saw start end. Events reach the
        listener after the query returns, in order: a query's last progress comes before its
        end, so a flush after this keeps the last micro-batch of a `--once` run."""
        with self._all_ended:
            return self._all_ended.wait_for(lambda: not self._running, timeout)

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        durations = progress.durationMs or {}
        row = ProgressRow(
            query=progress.name or str(progress.id),
            run_id=str(progress.runId),
            batch_id=int(progress.batchId),
            timestamp=_instant(progress.timestamp),
            num_input_rows=int(progress.numInputRows),
            input_rows_per_second=_rate(progress.inputRowsPerSecond),
            processed_rows_per_second=_rate(progress.processedRowsPerSecond),
            trigger_ms=durations.get("triggerExecution"),
            add_batch_ms=durations.get("addBatch"),
            latest_offset_ms=durations.get("latestOffset"),
        )
        with self._lock:
            self._rows.append(row)
        log_progress(row)

    def drain(self) -> list[ProgressRow]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def flush(self, spark: SparkSession, cfg: PipelineConfig) -> int:
        """Append buffered progress rows to `lake/_metrics`; returns how many were written."""
        rows = self.drain()
        if not rows:
            return 0
        df = spark.createDataFrame(rows, METRICS_SCHEMA)
        storage.append(df, cfg.metrics_table)
        self.flushes += 1
        return len(rows)
