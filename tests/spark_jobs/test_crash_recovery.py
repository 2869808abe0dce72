"""Exactly once through crashes: SIGKILL the pipeline at random moments, restart, compare.

Batches land one by one into the interrupted copy; after each, the pipeline is started and
SIGKILLed at a random moment. It must end with the same tables as an uninterrupted run on the
same landing data (timestamps, micro-batch ids and absolute paths aside), and `verify` must hold.

The killed runs take one file per micro-batch, so a kill lands mid-stream; the reference run and
the final catch-up run take what is there in as few micro-batches as they like, so the tables
must not depend on micro-batch boundaries (or on a rate limit changed between restarts) either.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import verify
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import CheckpointLock, GracefulStop
from spark_jobs.pipeline import run as run_pipeline
from spark_jobs.storage import read_delta
from tests.support.generator import scenario_variant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.spark]

KILLS = 10
VOLATILE = {"_ingested_at", "recorded_at", "micro_batch_id"}
SCENARIO_PATH = Path(__file__).resolve().parents[2] / "configs" / "scenarios" / "driving.yaml"


def crash_scenario(tmp: Path) -> Path:
    """driving, small preset, with one file per micro-batch so a kill lands mid-stream."""
    return scenario_variant(tmp, "driving", lambda raw: raw["pipeline"].update(max_files_per_trigger=1), "driving_crash.yaml")


def pipeline_command(scenario: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "medallion.cli", "pipeline", "--scenario", str(scenario), "--profile", "small",
            "--data", str(data), "--once", "--master", "local[2]"]


def normalised(df: DataFrame) -> DataFrame:
    """Drop run-dependent columns; keep only the file name of lineage paths."""
    for column in df.columns:
        if column in VOLATILE:
            df = df.drop(column)
        elif column == "_source_file":
            df = df.withColumn(column, F.element_at(F.split(column, "/"), -1))
    return df


def differing_rows(expected: DataFrame, actual: DataFrame) -> int:
    """How many distinct rows have a different number of copies in the two tables: one
    aggregation over both (what two `exceptAll` would find, in one job instead of two)."""
    signed = expected.withColumn("_copies", F.lit(1)).unionByName(actual.withColumn("_copies", F.lit(-1)))
    return signed.groupBy(*expected.columns).agg(F.sum("_copies").alias("_diff")).where("_diff != 0").count()


def quality_totals(df: DataFrame) -> DataFrame:
    """Quality rows summed per (entity, landing batch, rule): micro-batch boundaries differ."""
    numbers = [c for c in df.columns if c in ("checked", "passed", "failed", "bronze_rows", "silver_rows",
                                               "quarantine_rows", "duplicate_rows", "dropped_rows")]
    return df.groupBy("entity", "batch_id", "rule", "kind", "action").agg(*[F.sum(c).alias(c) for c in numbers])


def tables(data: DataRoot) -> list[str]:
    names = []
    for layer in ("bronze", "silver", "quarantine", "gold"):
        for table in sorted((data.lake / layer).iterdir()):
            names.append(f"{layer}/{table.name}")
    return names


def land(source: DataRoot, target: DataRoot, batch: int) -> None:
    """Copy one generated batch into `target` the way the generator lands it: manifests first,
    then each file under a `.` name, renamed in."""
    for manifest in sorted(source.manifests.glob(f"*/b{batch:06d}.json")):
        destination = target.manifests / manifest.parent.name / manifest.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest, destination)
    for path in sorted(source.landing.glob(f"*/*-b{batch:06d}-p*.jsonl")):
        folder = target.landing / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / f".{path.name}")
        (folder / f".{path.name}").rename(folder / path.name)


def test_sigkill_at_random_moments_then_restart_matches_a_clean_run(spark: SparkSession, tmp_path: Path) -> None:
    scenario_path = crash_scenario(tmp_path)
    clean, crashed = DataRoot(tmp_path / "clean"), DataRoot(tmp_path / "crashed")
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", str(scenario_path), "--profile",
                    "small", "--seed", "5", "--data", str(clean.root), "--batches", str(KILLS + 2), "--quiet"], check=True)
    shutil.copytree(clean.manifests, crashed.manifests, ignore=shutil.ignore_patterns("b*.json"))
    # The reference run: uninterrupted, in this test's session, in as few micro-batches as it likes.
    run_pipeline(spark, PipelineConfig(scenario=load_scenario(SCENARIO_PATH, profile="small"), data=clean), GracefulStop())

    # Each run gets a new landing batch, so there is always work in hand when the kill comes.
    rng = random.Random(2026)
    kills_mid_run = 0
    for batch in range(KILLS):
        land(clean, crashed, batch)
        process = subprocess.Popen(pipeline_command(scenario_path, crashed.root), start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 14.0))  # JVM start-up to well into the batch
        if process.poll() is None:
            kills_mid_run += 1
            os.killpg(process.pid, signal.SIGKILL)  # the Python driver and its JVM, no clean-up at all
        process.wait()
    for batch in range(KILLS, KILLS + 2):
        land(clean, crashed, batch)
    # The catch-up restart recovers the last kill's micro-batch, then takes the rest unthrottled.
    finished = subprocess.run(pipeline_command(SCENARIO_PATH, crashed.root), capture_output=True, text=True)
    assert finished.returncode in (0, 6), finished.stderr[-2000:]  # 6 = quality alert, as in the clean run
    assert kills_mid_run >= KILLS - 2, f"only {kills_mid_run} of {KILLS} kills hit a running pipeline"

    assert tables(crashed) == tables(clean)
    for name in tables(clean):
        layer, table = name.split("/")
        expected = normalised(read_delta(spark, str(clean.table(layer, table))))
        actual = normalised(read_delta(spark, str(crashed.table(layer, table))))
        assert differing_rows(expected, actual) == 0, f"{name}: rows missing, extra or repeated after crashes"
    expected_q = quality_totals(read_delta(spark, str(clean.quality)))
    actual_q = quality_totals(read_delta(spark, str(crashed.quality)))
    assert differing_rows(expected_q, actual_q) == 0

    scenario = load_scenario(scenario_path, profile="small")
    assert [c for c in verify(spark, scenario, crashed) if not c.ok] == []


def test_second_copy_on_the_same_checkpoints_fails_clearly(tmp_path: Path) -> None:
    data = DataRoot(tmp_path)
    with CheckpointLock(data):  # what a running pipeline holds
        result = subprocess.run(pipeline_command(SCENARIO_PATH, tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 5
    assert "another medallion pipeline" in result.stderr and str(os.getpid()) in result.stderr
