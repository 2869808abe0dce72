"""The anomaly-flag table keeps gold's guarantees: built in passes (late readings re-judging
earlier cells) it equals one pass over everything and a recomputation from silver, and a
replayed micro-batch (a crash between silver's append and the MERGE) changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from spark_jobs import gold
from spark_jobs.config import pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run
from tests.support.generator import generate

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PROFILE = "testing"  # six engines, every defect kind at a few percent (late readings included)


def _same(a: DataFrame, b: DataFrame) -> bool:
    return a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0


def test_flags_in_passes_equal_one_pass_and_survive_a_replay(spark: SparkSession, tmp_path: Path) -> None:
    scenario = load_scenario("turbofan", profile=PROFILE)
    (table,) = [g for g in scenario.gold if g.anomalies is not None]
    stepwise, at_once = DataRoot(tmp_path / "stepwise"), DataRoot(tmp_path / "at-once")
    generate(stepwise.root, "turbofan", 9, 3, PROFILE)
    run(spark, pipeline_config(scenario, stepwise), GracefulStop())
    generate(stepwise.root, "turbofan", 9, 6, PROFILE)  # batches 3-5, some of their readings late
    run(spark, pipeline_config(scenario, stepwise), GracefulStop())
    generate(at_once.root, "turbofan", 9, 6, PROFILE)
    run(spark, pipeline_config(scenario, at_once), GracefulStop())

    read = lambda root: spark.read.format("delta").load(str(root.table("gold", table.name)))  # noqa: E731
    flags = read(stepwise)
    assert flags.count() > 0 and flags.where(F.col("flag").isNotNull()).count() > 0
    assert _same(flags, read(at_once))
    cfg = pipeline_config(scenario, stepwise)
    silver = spark.read.format("delta").load(cfg.table("silver", "readings"))
    late = silver.where(F.col("_batch_id") >= 3).where(F.col("recorded_at") < F.lit(scenario.clock.start + 3 * scenario.clock.interval))
    assert late.count() > 0, "the second pass brought readings of cells the first pass had judged"
    assert _same(flags, gold.recompute(table, silver, gold.load_dimensions(spark, cfg, table)).select(*flags.columns))

    before = flags.localCheckpoint()
    version = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('gold', table.name)}`").agg(F.max("version")).first()
    gold.update(spark, cfg, table, silver.where(F.col("_batch_id") == 4))  # the replay of a micro-batch
    after = read(stepwise)
    assert _same(before, after)
    newest = spark.sql(f"DESCRIBE HISTORY delta.`{cfg.table('gold', table.name)}`").agg(F.max("version")).first()
    assert version is not None and newest is not None and newest[0] > version[0]  # it did MERGE, to the same rows
