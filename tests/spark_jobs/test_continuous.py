"""`--continuous`: new landing batches flow to gold while it runs; SIGTERM ends it cleanly."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_series(url: str, name: str, labels: dict[str, str], value: float, timeout: float = 60) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample at `url` by name and sorted labels, once `name{labels}` reads `value`."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        if samples.get(name, {}).get(tuple(sorted(labels.items()))) == value or time.monotonic() > deadline:
            assert samples.get(name, {}).get(tuple(sorted(labels.items()))) == value, text
            return samples
        time.sleep(0.5)


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

    port, ui_port = free_port(), free_port()  # the /metrics endpoint, the Spark UI
    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "--log-format", "json", "pipeline", "--scenario", str(scenario_path), "--profile", "small",
         "--data", str(data.root), "--continuous", "--master", "local[2]", "--metrics-address", f"127.0.0.1:{port}",
         "--conf", f"spark.ui.port={ui_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(silver_has_batch_1, process, "the first batches in silver")
        generate(scenario_path, data.root, 4)  # batches 2 and 3 land while the pipeline runs
        wait_for(gold_has_batch_3, process, "batch 3 in gold")
        silver_rows = read_delta(spark, str(data.table("silver", "driver_events"))).count()
        series = wait_for_series(f"http://127.0.0.1:{port}/metrics", "medallion_rows_total",
                                 {"layer": "silver", "entity": "driver_events"}, silver_rows)
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/metrics/prometheus", timeout=10) as response:
            spark_metrics = response.read().decode()  # Spark's own series, beside its UI
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    assert "finishing the micro-batch in hand" in output
    assert f"Metrics: http://127.0.0.1:{port}/metrics" in output
    assert re.search(rf"^Spark UI: http://\S+:{ui_port}$", output, re.MULTILINE), output[:3000]
    assert "_driver_" in spark_metrics, spark_metrics[:1000]
    event_logs = [p for p in data.spark_events.rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert event_logs, "no Spark event log under the data root"
    assert series["medallion_last_pass_timestamp_seconds"][()] > time.time() - 600
    assert 0 <= series["medallion_landing_to_gold_lag_seconds"][(("entity", "driver_events"),)] < 600
    assert 0 < series["medallion_quality_score"][(("entity", "driver_events"),)] <= 1
    assert series["medallion_micro_batch_duration_seconds_count"][(("entity", "driver_events"), ("layer", "silver"))] >= 1
    quarantined = read_delta(spark, str(data.table("quarantine", "driver_events"))).count()
    assert series["medallion_rows_total"].get((("entity", "driver_events"), ("layer", "quarantine")), 0) == quarantined
    # One JSON line per micro-batch: silver's with what it wrote and its lag behind landing.
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    batches = [e for e in events if e.get("event") == "micro_batch"]
    silver_lines = [e for e in batches if e["layer"] == "silver" and e["entity"] == "driver_events"]
    assert silver_lines and all(e["rows_in"] >= e["rows_written"] + e["rows_quarantined"] for e in silver_lines), batches
    assert sum(e["rows_written"] for e in silver_lines) == read_delta(spark, str(data.table("silver", "driver_events"))).count()
    assert all(e["ms"] > 0 and e["lag_s"] is not None and e["lag_s"] >= 0 for e in silver_lines), silver_lines
    assert {e["entity"] for e in batches if e["layer"] == "bronze"} == set(scenario.entities), batches
    assert [c for c in verify(spark, scenario, data) if not c.ok] == []
