"""`medallion pipeline`: bronze -> silver -> gold in one Spark application.

`--once` runs the layers in order, each until everything landed so far is processed
(dimensions reach silver before facts, so the final tables don't depend on timing), then stops.
`--continuous` repeats that ordered pass every `pipeline.trigger_interval` until SIGTERM/SIGINT
(which lets the query in hand finish its micro-batch). Independent always-on queries would let
a fact's micro-batch run before the dimension rows it references reach silver, and quarantine
valid rows as orphans; ordered passes keep continuous results equal to `--once` results.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from medallion.contracts.errors import QualityAlert
from medallion.contracts.logs import PASS, PIPELINE_LOGGER
from spark_jobs import bronze, gold, silver, sql_guard, storage
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import (
    STOP,
    CheckpointLock,
    GracefulStop,
    InputWatch,
    refuse_while_reprocess_pending,
    run_cycles,
)
from spark_jobs.metrics import MetricsRecorder
from spark_jobs.session import SessionOptions, build_session

log = logging.getLogger(PIPELINE_LOGGER)


@dataclass
class PipelineResult:
    """What a `--once` run did: seconds per layer and the quality alerts raised."""

    seconds: dict[str, float] = field(default_factory=dict)
    alerts: list[tuple[str, int, float]] = field(default_factory=list)
    cycles: int = 0


def run_once(spark: SparkSession, cfg: PipelineConfig, recorder: MetricsRecorder, alerts: silver.QualityAlerts,
             stop: GracefulStop, result: PipelineResult, watch: InputWatch | None = None,
             on_gold_commit: gold.OnCommit | None = None) -> None:
    """One ordered pass: every configured layer until what has landed so far is processed
    (with a `watch`, the queries whose input is unchanged since their last run are skipped).

    With silver and gold both configured, silver's micro-batches update the gold tables they
    feed (`gold.fed_by_silver`) from their own rows, as they are written: no gold query reads
    them back, and a landed file reaches gold in the pass that brings it to silver."""
    started_before = recorder.started
    fused = gold.fed_by_silver(cfg.scenario) if {"silver", "gold"} <= set(cfg.layers) else []
    inside_silver = [0.0]  # seconds of gold work done inside silver's micro-batches

    def gold_updates(entity: str) -> silver.OnSilverRows | None:
        tables = [g for g in fused if g.source == entity]

        def update(rows: DataFrame) -> None:
            started = time.perf_counter()
            for table in tables:
                gold.update(spark, cfg, table, rows, on_gold_commit)
            inside_silver[0] += time.perf_counter() - started

        return update if tables else None

    for layer in cfg.layers:
        if stop.requested.is_set():
            break
        started = time.perf_counter()
        if layer == "bronze":
            bronze.run(spark, cfg, stop, watch)
        elif layer == "silver":
            silver.run(spark, cfg, alerts, stop, watch, on_silver_rows=gold_updates)
        else:
            gold.run(spark, cfg, stop, watch, on_gold_commit, tables=[g for g in cfg.scenario.gold if g not in fused])
        _add(result, layer, time.perf_counter() - started - (inside_silver[0] if layer == "silver" else 0.0))
    if fused:
        _add(result, "gold", inside_silver[0])
    if not stop.requested.is_set():
        queries = recorder.started - started_before
        log.info("pass over %s done: %d queries ran", ",".join(cfg.layers), queries,
                 extra={"event": PASS, "layers": list(cfg.layers), "queries": queries, "idle": queries == 0})
    if not cfg.once:  # a --once run writes its progress rows once, when it ends (see `run`)
        flush_metrics(spark, cfg, recorder)


def flush_metrics(spark: SparkSession, cfg: PipelineConfig, recorder: MetricsRecorder) -> None:
    """Append the progress rows recorded so far to `lake/_metrics` (nothing when there are none:
    each append is a Delta commit, 0.3-0.8 s)."""
    recorder.wait_for_ended_queries()
    if recorder.flush(spark, cfg):
        storage.compact_small_files(spark, [cfg.metrics_table])


def _add(result: PipelineResult, layer: str, seconds: float) -> None:
    result.seconds[layer] = result.seconds.get(layer, 0.0) + seconds


def run(spark: SparkSession, cfg: PipelineConfig, stop: GracefulStop = STOP,
        on_gold_commit: gold.OnCommit | None = None) -> PipelineResult:
    """Run the configured layers once (`--once`), or in cycles until stopped (`--continuous`);
    `on_gold_commit` is called after each gold merge (the latency benchmark's clock)."""
    storage.check_data_root(cfg)  # before any query reads or writes under the data root
    refuse_while_reprocess_pending(cfg.data)  # `medallion reprocess` runs its own pass inside `rebuilding`
    sql_guard.check_scenario(spark, cfg.scenario)  # before any query runs scenario SQL
    recorder = MetricsRecorder()
    spark.streams.addListener(recorder)
    alerts = silver.QualityAlerts(cfg.scenario.pipeline.quality_threshold)
    result = PipelineResult()
    if {"silver", "gold"} <= set(cfg.layers):
        # Gold tables silver updates have no query to create them: made once per run, not per
        # pass (each costs a plan over the lookups), so export and verify find them even empty.
        for table in gold.fed_by_silver(cfg.scenario):
            gold.ensure_gold_table(spark, cfg, table)
    try:
        if cfg.once:
            run_once(spark, cfg, recorder, alerts, stop, result, on_gold_commit=on_gold_commit)
        else:
            interval = cfg.scenario.pipeline.trigger_interval.total_seconds()
            log.info("continuous: a pass over %s every %gs; SIGTERM or Ctrl-C to stop", ",".join(cfg.layers), interval)
            watch = InputWatch()
            result.cycles = run_cycles(
                lambda: run_once(spark, cfg, recorder, alerts, stop, result, watch, on_gold_commit), interval, stop
            )
    finally:
        flush_metrics(spark, cfg, recorder)
        spark.streams.removeListener(recorder)
    result.alerts = list(alerts.breaches)
    return result


def run_pipeline(cfg: PipelineConfig, session: SessionOptions, stop: GracefulStop | None = None) -> PipelineResult:
    """`medallion pipeline` as a library call: check the data root, take its checkpoint lock,
    start Spark, run (see `run`).

    Args:
        cfg: what to run (`pipeline_config` builds it).
        session: how Spark runs.
        stop: None installs the process-wide SIGTERM/SIGINT handler (`STOP`), as a command
            wants; pass a `GracefulStop()` to leave the process's signals alone (a notebook).
    """
    storage.check_data_root(cfg)  # before the lock file is made in the lake, or Spark starts
    refuse_while_reprocess_pending(cfg.data)  # again inside `run`, under the lock
    if stop is None:
        stop = STOP.install()
    with CheckpointLock(cfg.data):  # before Spark starts, so a second copy fails in a blink
        spark = build_session(session)
        return run(spark, cfg, stop)


def report_once(result: PipelineResult, cfg: PipelineConfig) -> None:
    """After a `--once` run: print the timings; QualityAlert when a batch scored below the threshold."""
    timings = ", ".join(f"{layer} {seconds:.1f}s" for layer, seconds in result.seconds.items())
    print(f"[pipeline] done: {timings}", flush=True)
    if result.alerts:
        worst = min(result.alerts, key=lambda a: a[2])
        raise QualityAlert(
            f"{len(result.alerts)} batch(es) scored below the quality threshold "
            f"{cfg.scenario.pipeline.quality_threshold}; worst: {worst[0]} batch {worst[1]} at {worst[2]:.4f}. "
            "See lake/quality (rule = '_batch') and the quarantine tables."
        )
