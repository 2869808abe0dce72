"""`medallion retention` (spark_jobs/retention.py) on a real data root: landing files already in
bronze and Delta files unreferenced past the age go; everything else stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from medallion.cli import build_parser
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from spark_jobs.retention import RETENTION_CHECK, delta_tables, retain_forever, run_retention

pytestmark = pytest.mark.spark


def _landing(data: DataRoot, entity: str, batch: int, age_hours: float) -> Path:
    path = data.landing_file(entity, batch, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"x": 1}\n', encoding="utf-8")
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def _parquet(table: Path) -> int:
    return sum(1 for p in table.rglob("*.parquet") if "_delta_log" not in p.parts)


def test_retention_deletes_only_old_ingested_landing_files_and_unreferenced_delta_files(
    spark: object, tmp_path: Path
) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    scenario = load_scenario("driving")
    entity, other = scenario.processing_order[0], scenario.processing_order[1]
    data = DataRoot(tmp_path / "data")
    # Bronze holds batch 1 of `entity` (written twice: the first version's files become unreferenced).
    bronze = data.table("bronze", entity)
    for value in ("first", "second"):
        # One file per version, whatever the session's parallelism (local[2] would write two).
        spark.createDataFrame([(1, value)], "_batch_id long, v string").coalesce(1).write.format("delta").mode(
            "overwrite").save(str(bronze))
    gold = data.table("gold", "windows")
    spark.createDataFrame([(1, 2.5)], "k long, m double").coalesce(1).write.format("delta").save(str(gold))
    old_in_bronze = _landing(data, entity, 1, age_hours=5)
    old_not_in_bronze = _landing(data, entity, 2, age_hours=5)
    new_in_bronze = data.landing_file(entity, 1, 1)
    new_in_bronze.write_text("{}\n", encoding="utf-8")
    other_entity = _landing(data, other, 1, age_hours=5)  # no bronze table for it yet
    stranger = data.landing_dir(entity) / "notes.txt"
    stranger.write_text("not a landing file", encoding="utf-8")
    os.utime(stranger, (0, 0))
    outside = tmp_path / "outside.jsonl"
    outside.write_text("{}\n", encoding="utf-8")
    os.utime(outside, (0, 0))
    link = data.landing_dir(entity) / f"{entity}-b000001-p07.jsonl"
    link.symlink_to(outside)
    assert sorted(delta_tables(data)) == sorted([bronze, gold])
    before = _parquet(bronze)

    # An age longer than everything: nothing goes.
    kept = run_retention(spark, scenario, data, hours=24)
    assert (kept.landing_files_deleted, kept.tables_vacuumed, kept.data_files_deleted) == (0, 2, 0)
    assert spark.conf.get(RETENTION_CHECK) != "false", "the session's safety check is restored"

    # Two hours: the 5-hour-old file of an ingested batch goes, nothing else.
    result = run_retention(spark, scenario, data, hours=2)
    assert result.landing_files_deleted == 1 and not old_in_bronze.exists()
    for path in (old_not_in_bronze, new_in_bronze, other_entity, stranger, outside):
        assert path.exists(), path
    assert link.is_symlink(), "a link is never followed nor deleted"
    # The overwritten version's file is younger than 2 hours: VACUUM keeps it.
    assert result.data_files_deleted == 0 and _parquet(bronze) == before

    # Age 0: the unreferenced file goes, the current versions read the same.
    zero = run_retention(spark, scenario, data, hours=0)
    assert before == 2 and zero.data_files_deleted == 1 and _parquet(bronze) == 1
    assert zero.landing_files_deleted == 1 and not new_in_bronze.exists() and old_not_in_bronze.exists()
    assert [tuple(r) for r in spark.read.format("delta").load(str(bronze)).collect()] == [(1, "second")]
    assert [tuple(r) for r in spark.read.format("delta").load(str(gold)).collect()] == [(1, 2.5)]
    assert zero.line().startswith(f"[retention] {zero.landing_files_deleted} landing files deleted, 2 Delta tables vacuumed")
    with pytest.raises(ValueError, match="0 hours or more"):
        run_retention(spark, scenario, data, hours=-1)


def test_retain_forever_runs_passes_until_stopped() -> None:
    passes: list[int] = []
    slept: list[float] = []

    class Result:
        def line(self) -> str:
            return "[retention] a pass"

    def one_pass() -> Result:
        passes.append(1)
        return Result()

    # Stops after the second pass's wait has begun.
    count = retain_forever(one_pass, every=2.5, stopping=lambda: len(slept) >= 4, sleep=slept.append)  # type: ignore[arg-type, return-value]
    assert count == 2 and len(passes) == 2
    assert slept[:3] == [1.0, 1.0, 0.5]


def test_cli_parses_retention() -> None:
    args = build_parser().parse_args(["retention", "--scenario", "driving", "--data", "/data", "--older-than", "168",
                                      "--every", "3600", "--master", "local[1]"])
    assert (args.older_than, args.every, args.master) == (168.0, 3600.0, "local[1]")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["retention", "--scenario", "driving", "--data", "/data", "--older-than", "-1"])
