"""Every built-in scenario, defects on, through bronze -> silver -> gold: `verify` holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import verify
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]


@pytest.mark.parametrize(
    ("name", "profile"),
    [("traffic", "realistic"), ("retail", "small"), ("infra", "small"), ("turbofan", "testing")],
)
def test_scenario_passes_verify(spark: SparkSession, tmp_path: Path, name: str, profile: str) -> None:
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", name, "--profile", profile,
                    "--seed", "5", "--data", str(tmp_path), "--batches", "2", "--quiet"], check=True)
    scenario = load_scenario(name, profile=profile)
    data = DataRoot(tmp_path)
    manifests = [p for p in data.manifests.rglob("b*.json")]
    assert any('"kind"' in p.read_text() for p in manifests), "defects are on"
    run(spark, PipelineConfig(scenario=scenario, data=data), GracefulStop())
    checks = verify(spark, scenario, data)
    assert [c for c in checks if not c.ok] == []
    quarantined = sum(spark.read.format("delta").load(str(data.table("quarantine", e))).count() for e in scenario.entities)
    assert quarantined > 0, "injected defects must reach quarantine"
