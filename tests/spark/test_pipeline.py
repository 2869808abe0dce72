"""The whole pipeline on generated driving data: verify holds, and a second run changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from generators.scenario import load_scenario
from medallion.layout import DataRoot
from medallion.verify import verify
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import GracefulStop, InputWatch
from spark_jobs.metrics import MetricsRecorder
from spark_jobs.pipeline import PipelineResult, run, run_once
from spark_jobs.silver import QualityAlerts

pytestmark = pytest.mark.spark


def generate(data: Path, batches: int, seed: int = 11, profile: str = "small") -> None:
    subprocess.run(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", profile,
         "--seed", str(seed), "--data", str(data), "--batches", str(batches), "--quiet"],
        check=True,
    )


def table_versions(spark: SparkSession, data: DataRoot) -> dict[str, int]:
    versions = {}
    for layer_dir in sorted(data.lake.iterdir()):
        if layer_dir.name.startswith("_"):
            continue
        for table in [layer_dir, *sorted(layer_dir.iterdir())]:
            if (table / "_delta_log").is_dir():
                versions[str(table.relative_to(data.lake))] = DeltaTable.forPath(spark, str(table)).history(1).first()["version"]
    return versions


@pytest.fixture(scope="module")
def processed(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, dict[str, int]]:
    data = DataRoot(tmp_path_factory.mktemp("pipeline"))
    generate(data.root, batches=3)
    cfg = PipelineConfig(scenario=load_scenario("driving", profile="small"), data=data)
    run(spark, cfg, GracefulStop())
    return cfg, table_versions(spark, data)


def test_verify_holds_after_one_run(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    cfg, _ = processed
    failed = [c for c in verify(spark, cfg.scenario, cfg.data) if not c.ok]
    assert failed == []


def test_second_run_is_a_no_op(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    cfg, before = processed
    run(spark, cfg, GracefulStop())
    after = table_versions(spark, cfg.data)
    assert {k: v for k, v in after.items() if k != "_metrics"} == {k: v for k, v in before.items() if k != "_metrics"}


class StartedQueries(StreamingQueryListener):
    """Names of the streaming queries started (called synchronously by `start()`)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def onQueryStarted(self, event: Any) -> None:
        self.names.append(event.name)

    def onQueryProgress(self, event: Any) -> None:
        pass

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def test_continuous_passes_pick_up_new_batches_and_skip_unchanged_inputs(spark: SparkSession, tmp_path: Path) -> None:
    data = DataRoot(tmp_path)
    generate(data.root, batches=2)
    cfg = PipelineConfig(scenario=load_scenario("driving", profile="small"), data=data, once=False)
    watch, started = InputWatch(), StartedQueries()

    def one_pass() -> list[str]:
        """What one `--continuous` cycle does (pipeline.run_cycles calls run_once)."""
        started.names.clear()
        run_once(spark, cfg, MetricsRecorder(), QualityAlerts(0.0), GracefulStop(), PipelineResult(), watch)
        return sorted(started.names)

    def queries(entities: set[str]) -> list[str]:
        gold = [f"gold_{g.name}" for g in cfg.scenario.gold if g.source in entities]
        return sorted([f"bronze_{e}" for e in entities] + [f"silver_{e}" for e in entities] + gold)

    spark.streams.addListener(started)
    try:
        assert one_pass() == queries(set(cfg.scenario.entities))
        assert one_pass() == []  # nothing landed: no query starts
        generate(data.root, batches=4)  # resumes after batch 1: batches 2 and 3 land
        landed = {path.parent.name for batch in (2, 3) for path in data.landing.glob(f"*/*-b{batch:06d}-*.jsonl")}
        assert landed < set(cfg.scenario.entities)  # the dimensions' cadence is hourly
        assert one_pass() == queries(landed)
    finally:
        spark.streams.removeListener(started)
    failed = [c for c in verify(spark, cfg.scenario, data) if not c.ok]
    assert failed == []
    batches = {r[0] for r in spark.read.format("delta").load(cfg.table("silver", "driver_events")).select("_batch_id").distinct().collect()}
    assert batches == {0, 1, 2, 3}
