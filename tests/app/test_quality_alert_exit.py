"""A real `medallion pipeline --once` process whose data breaches the scenario's quality threshold
ends with the quality-alert exit code (6) and says which batch scored worst; the numbers in its
message are checked against the quality table, read here with delta-rs and polars."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from medallion.contracts.errors import QualityAlert
from medallion.contracts.layout import DataRoot
from tests.support.generator import generate, scenario_variant

pytestmark = [pytest.mark.integration, pytest.mark.slow]

THRESHOLD = 0.999  # the driving scenario's defects put every batch's score below this


def _strict(raw: dict[str, Any]) -> None:
    raw.setdefault("pipeline", {})["quality_threshold"] = THRESHOLD


def test_a_breached_threshold_ends_the_pipeline_with_the_quality_alert_code(tmp_path: Path) -> None:
    scenario = scenario_variant(tmp_path, "driving", _strict)
    data = DataRoot(tmp_path / "data")
    generate(data.root, scenario, 21, 2, "small")
    done = subprocess.run(
        [sys.executable, "-m", "medallion.cli", "pipeline", "--scenario", str(scenario), "--profile", "small",
         "--data", str(data.root), "--once", "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=2"],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == QualityAlert.exit_code == 6, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    message = re.search(r"medallion pipeline: error: (\d+) batch\(es\) scored below the quality threshold "
                        r"([\d.]+); worst: (\w+) batch (\d+) at ([\d.]+)\.", done.stderr)
    assert message is not None, done.stderr[-3000:]
    assert float(message[2]) == THRESHOLD
    assert "quality ALERT" in done.stderr  # each breach is also logged as it happens

    # The run finished its work before it failed: the quality table holds every batch, and its
    # summary rows below the threshold are the ones the message counts and ranks.
    summary = pl.read_delta(str(data.quality)).filter(pl.col("rule") == "_batch")
    breaches = summary.filter(pl.col("score") < THRESHOLD)
    assert int(message[1]) == breaches.height > 0
    worst = breaches.sort(["score", "entity", "batch_id"]).row(0, named=True)
    assert float(message[5]) == pytest.approx(worst["score"], abs=5e-5)
    assert (message[3], int(message[4])) in {
        (r["entity"], r["batch_id"]) for r in breaches.filter(pl.col("score") == worst["score"]).iter_rows(named=True)
    }
    assert set(summary["entity"]) == {"companies", "drivers", "driver_events"}
