"""How medallion logs: Python `logging` under the `medallion` logger, as text or JSON lines.

Modules log with `logging.getLogger(__name__)`; the fields of an event go in `extra` and
become keys of a JSON line (`--log-format json`). A micro-batch line (`MICRO_BATCH`) carries:
layer, entity, batch_id, rows_in, rows_written, rows_quarantined, ms, lag_s (seconds from the
landing of the micro-batch's oldest file to the end of the micro-batch; null when unknown);
silver's also quarantined_by_reason, score (the lowest of its landing batches) and gold_updated
(the gold tables silver feeds were updated inside it, so lag_s is landing -> gold). A pass line
(`PASS`, with `queries` and `idle`) ends each pass over the layers; idle ones are not printed.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
MICRO_BATCH = "micro_batch"  # the `event` of a micro-batch line
PASS = "pass"  # the `event` of a pipeline pass that ended without a stop request
ROOT = "medallion"
PIPELINE_LOGGER = f"{ROOT}.pipeline"  # the jobs' logger: micro-batch and pass events, warnings

# Attributes every LogRecord has: anything else on a record came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra` fields of a record."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **event_fields(record),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of each record (a CLI called in-process,
    as tests and notebooks do, must not keep writing to a stream that was swapped out)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _not_idle(record: logging.LogRecord) -> bool:
    """A continuous run passes over its inputs every few seconds: a pass that started no query
    is not worth a line (the metrics still count it)."""
    return not getattr(record, "idle", False)


def configure_logging(log_format: LogFormat = "text", level: int | str = logging.INFO) -> None:
    """Send the `medallion` loggers' records to stderr in the given format (idempotent: a second
    call replaces the handler the first one installed)."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_medallion", False)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(_not_idle)
    handler._medallion = True  # type: ignore[attr-defined]
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
