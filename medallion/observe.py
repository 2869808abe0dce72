"""Prometheus series of a running pipeline, made from its log events.

The pipeline logs one structured event per micro-batch and per pass (medallion.contracts.logs);
`PipelineMetrics` is a logging handler that turns them into `medallion_*` series, and `serve`
publishes them as Prometheus text at `/metrics`. The jobs know nothing of Prometheus.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from medallion.contracts.errors import ConfigError
from medallion.contracts.logs import MICRO_BATCH, PASS, ROOT, event_fields

disable_created_metrics()  # no `*_created` twin of every counter: the series list stays readable

# Micro-batches take from well under a second to minutes.
DURATION_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, float("inf"))


class PipelineMetrics(logging.Handler):
    """The `medallion_*` series, updated from the pipeline's log events."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.registry = CollectorRegistry()
        r = self.registry
        self.rows = Counter("medallion_rows", "Rows written, per layer and entity (quarantine is a layer here)",
                            ["layer", "entity"], registry=r)
        self.rows_in = Counter("medallion_input_rows", "Rows read by micro-batches, per layer and entity",
                               ["layer", "entity"], registry=r)
        self.quarantined = Counter("medallion_quarantined_rows", "Quarantined rows by the rule they broke",
                                   ["entity", "reason"], registry=r)
        self.duration = Histogram("medallion_micro_batch_duration_seconds", "Wall time of a micro-batch",
                                  ["layer", "entity"], buckets=DURATION_BUCKETS, registry=r)
        self.lag = Gauge("medallion_landing_to_gold_lag_seconds",
                         "Seconds from the landing of a micro-batch's oldest file to its rows in gold, last micro-batch",
                         ["entity"], registry=r)
        self.score = Gauge("medallion_quality_score", "Quality score of the last landing batch (valid / landed lines)",
                           ["entity"], registry=r)
        self.last_pass = Gauge("medallion_last_pass_timestamp_seconds",
                               "When the last complete pass over the layers ended (Unix time)", registry=r)

    def emit(self, record: logging.LogRecord) -> None:
        fields = event_fields(record)
        event = fields.get("event")
        if event == PASS:
            self.last_pass.set(record.created)
        elif event == MICRO_BATCH:
            self._micro_batch(fields)

    def _micro_batch(self, f: dict[str, Any]) -> None:
        layer = str(f["layer"])
        name = str(f.get("entity") or f.get("table"))
        if f.get("rows_in") is not None:
            self.rows_in.labels(layer, name).inc(f["rows_in"])
        if f.get("rows_written") is not None:
            self.rows.labels(layer, name).inc(f["rows_written"])
        if f.get("rows_quarantined"):
            self.rows.labels("quarantine", name).inc(f["rows_quarantined"])
        for reason, rows in (f.get("quarantined_by_reason") or {}).items():
            self.quarantined.labels(name, reason).inc(rows)
        if f.get("ms") is not None:
            self.duration.labels(layer, name).observe(f["ms"] / 1000)
        if f.get("score") is not None:
            self.score.labels(name).set(f["score"])
        if f.get("gold_updated") and f.get("lag_s") is not None:
            self.lag.labels(name).set(f["lag_s"])


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint."""

    url: str
    handler: PipelineMetrics
    _server: Any

    def close(self) -> None:
        logging.getLogger(ROOT).removeHandler(self.handler)
        self._server.shutdown()
        self._server.server_close()


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT` (port 0 picks a free one) -> (host, port); ConfigError naming the option."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError("--metrics-address", [f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9464; port 0 picks a free one)"])
    return host.strip("[]"), int(port)


def serve(address: str) -> MetricsServer:
    """Serve the pipeline's series at http://ADDRESS/metrics (loopback by default: they name
    tables and rules), fed by the `medallion` loggers from now on."""
    host, port = parse_address(address)
    handler = PipelineMetrics()
    try:
        server, _thread = start_http_server(port, addr=host, registry=handler.registry)
    except OSError as exc:
        raise ConfigError("--metrics-address", [f"cannot listen on {host}:{port} ({exc.strerror}); pass another "
                                                "address, or port 0 to pick a free one"]) from None
    logging.getLogger(ROOT).addHandler(handler)
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return MetricsServer(url=f"http://{shown}:{bound}/metrics", handler=handler, _server=server)

