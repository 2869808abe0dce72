"""The jobs under spark-submit on a real standalone cluster (master + worker from pyspark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.local.cluster import StandaloneCluster
from medallion.package import build_pyfiles_zip
from medallion.verify import verify
from spark_jobs.jars import jar_paths

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_spark_submit_each_job_on_a_standalone_cluster(spark: SparkSession, tmp_path: Path) -> None:
    data = DataRoot(tmp_path / "data")
    scenario = ROOT / "configs" / "scenarios" / "driving.yaml"
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", str(scenario), "--profile", "small",
                    "--seed", "3", "--data", str(data.root), "--batches", "1", "--quiet"], check=True)
    pyfiles = build_pyfiles_zip(tmp_path / "medallion-py.zip")
    submit = str(Path(sys.executable).parent / "spark-submit")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    with StandaloneCluster(workers=1, cores_per_worker=2, memory_per_worker="1g") as cluster:
        for job in ("bronze", "silver", "gold"):
            result = subprocess.run(
                [submit, "--master", cluster.url, "--jars", ",".join(map(str, jar_paths())),
                 "--py-files", str(pyfiles), "--conf", "spark.executor.memory=768m",
                 str(ROOT / "spark_jobs" / f"{job}.py"), "--scenario", str(scenario), "--profile", "small",
                 "--data", str(data.root), "--once"],
                capture_output=True, text=True, env=env, timeout=600,
            )
            assert result.returncode == 0, f"{job}: {result.stderr[-3000:]}"
        assert {"medallion-bronze", "medallion-silver", "medallion-gold"} <= set(cluster.applications())
    failed = [c for c in verify(spark, load_scenario(scenario, profile="small"), data) if not c.ok]
    assert failed == []
