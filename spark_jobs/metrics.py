"""A StreamingQueryListener that keeps each micro-batch's progress for `medallion report`.

Progress events arrive on a listener thread; they are buffered and flushed to the Delta table
`lake/_metrics` by the driver's main thread (between stages, and periodically when continuous).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from spark_jobs import storage
from spark_jobs.config import PipelineConfig
from spark_jobs.schemas import METRICS_SCHEMA


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class MetricsRecorder(StreamingQueryListener):
    """Buffers one row per micro-batch: rows, rows/s and durations."""

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self.flushes = 0

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        progress = event.progress
        durations = progress.durationMs or {}
        row = (
            progress.name or str(progress.id),
            str(progress.runId),
            int(progress.batchId),
            _instant(progress.timestamp),
            int(progress.numInputRows),
            float(progress.inputRowsPerSecond) if progress.inputRowsPerSecond is not None else None,
            float(progress.processedRowsPerSecond) if progress.processedRowsPerSecond is not None else None,
            durations.get("triggerExecution"),
            durations.get("addBatch"),
            durations.get("latestOffset"),
        )
        with self._lock:
            self._rows.append(row)

    def drain(self) -> list[tuple[Any, ...]]:
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
