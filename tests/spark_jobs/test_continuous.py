"""`--continuous`: new landing batches flow to gold while it runs; SIGTERM ends it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import verify
from spark_jobs.storage import read_delta
from tests.support.generator import scenario_variant

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]


def generate(scenario: Path, data: Path, batches: int) -> None:
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", str(scenario), "--profile", "small",
                    "--seed", "9", "--data", str(data), "--batches", str(batches), "--quiet"], check=True)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str, timeout: float = 240) -> None:
    """Wait for an observable result of the running pipeline (it has no completion event)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the pipeline exited early while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(2)


def test_continuous_pipeline_follows_the_landing_zone_and_stops_on_sigterm(spark: SparkSession, tmp_path: Path) -> None:
    scenario_path = scenario_variant(tmp_path, "driving", lambda raw: raw["pipeline"].update(trigger_interval="1s"), "driving_fast.yaml")
    data = DataRoot(tmp_path / "data")
    generate(scenario_path, data.root, 2)
    scenario = load_scenario(scenario_path, profile="small")
    fourth_window = scenario.clock.start + 3 * scenario.clock.interval

    def gold_has_batch_3() -> bool:
        gold = read_delta(spark, str(data.table("gold", "company_activity_15m")))
        return gold is not None and gold.where(gold.window_start == fourth_window.replace(tzinfo=None)).count() > 0

    def silver_has_batch_1() -> bool:
        silver = read_delta(spark, str(data.table("silver", "driver_events")))
        return silver is not None and silver.where("_batch_id = 1").count() > 0

    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "pipeline", "--scenario", str(scenario_path), "--profile", "small",
         "--data", str(data.root), "--continuous", "--master", "local[2]"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(silver_has_batch_1, process, "the first batches in silver")
        generate(scenario_path, data.root, 4)  # batches 2 and 3 land while the pipeline runs
        wait_for(gold_has_batch_3, process, "batch 3 in gold")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    assert "finishing the micro-batch in hand" in output
    assert [c for c in verify(spark, scenario, data) if not c.ok] == []
