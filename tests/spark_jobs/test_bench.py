"""The pipeline bench's rows (spark_jobs/bench.py), on tiny sizes: each runs the real pipeline
and its baseline and returns a row whose figures come from that run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.layout import DataRoot
from medallion.databases import Connection
from spark_jobs import bench

pytestmark = pytest.mark.slow
KEYS = {"name", "value", "unit", "baseline", "ratio", "goal", "ok", "notes"}


def _silver(spark: SparkSession, root: Path, entity: str = "driver_events") -> object:
    return spark.read.format("delta").load(str(DataRoot(root).table("silver", entity)))


def test_small_batch_times_a_landed_batch_through_every_layer_and_the_copy(spark: SparkSession, tmp_path: Path) -> None:
    [row] = bench.small_batch(spark, tmp_path, first=2, runs=2)
    assert set(row) >= KEYS and row["value"] == row["ratio"] and row["value"] > 0
    assert row["ok"] == (row["ratio"] <= 3)
    assert set(re.findall(r"(bronze|silver|gold) \d+\.\d+s", row["notes"])) == {"bronze", "silver", "gold"}
    # The timed batches went through to silver, and the copy wrote them as Parquet.
    assert {r[0] for r in _silver(spark, tmp_path / "small-live").select("_batch_id").distinct().collect()} == {0, 1, 2, 3}
    copied = spark.read.parquet(str(tmp_path / "small-parquet-3" / "driver_events")).count()
    landed = sum(1 for p in (tmp_path / "small-live" / "landing" / "driver_events").glob("*-b000003-*.jsonl") for _ in p.open("rb"))
    assert copied == landed > 0


def test_flat_as_tables_grow_times_the_same_micro_batch_on_big_and_empty_silver(spark: SparkSession, tmp_path: Path) -> None:
    [row] = bench.flat_as_tables_grow(spark, tmp_path, bulk_rows=30_000, lines=2_000, rounds=1)
    assert set(row) >= KEYS and row["value"] == row["ratio"] and row["value"] > 0
    assert row["ok"] == (row["ratio"] <= 1.5)
    big, empty = _silver(spark, tmp_path / "grow-big"), _silver(spark, tmp_path / "grow-empty")
    bulk = big.where(F.col("event_id").startswith("a-"))
    assert bulk.count() == 30_000 and bulk.select("event_id").distinct().count() == 30_000
    assert big.count() - 30_000 == empty.count() > 0  # the same micro-batches on both sides
    # History: every bulk row before the clock's start, every driver one silver knows.
    latest = bulk.agg(F.max("event_time")).first()[0]
    earliest = big.where(~F.col("event_id").startswith("a-")).agg(F.min("event_time")).first()[0]
    assert latest < earliest
    drivers = _silver(spark, tmp_path / "grow-big", "drivers")
    assert bulk.join(drivers, "driver_id", "left_anti").count() == 0
    # Gold holds the bulk history's cells too (recomputed from the big silver).
    gold = spark.read.format("delta").load(str(DataRoot(tmp_path / "grow-big").table("gold", "company_activity_15m")))
    assert gold.agg(F.sum("events")).first()[0] == big.count()


def test_latency_with_a_one_second_trigger_reports_p50_and_p95(spark: SparkSession, tmp_path: Path) -> None:
    p50, p95 = bench.latency(spark, tmp_path, batches=2, cadence=1.0)
    assert "1s" in p50["baseline"] and p50["goal"] == "<= 3 s" and p95["goal"] == "<= 5 s"
    assert 0 < p50["value"] <= p95["value"]
    assert p50["ok"] == (p50["value"] <= 3) and p95["ok"] == (p95["value"] <= 5)
    assert "2/2 batches" in p50["notes"]


def test_whole_process_times_the_pipeline_and_the_copy_as_processes(tmp_path: Path) -> None:
    [row] = bench.whole_process(tmp_path, batches=1)
    assert set(row) >= KEYS and row["value"] > 0 and row["ratio"] > 0
    assert row["ok"] == (row["ratio"] <= 2)
    data = DataRoot(tmp_path / "process")
    assert (Path(data.table("gold", "company_activity_15m")) / "_delta_log").is_dir()
    assert {p.name for p in (tmp_path / "process-parquet").iterdir()} == {p.name for p in data.landing.iterdir()}


@pytest.mark.spark
@pytest.mark.integration
def test_export_write_modes_row_against_batch_on_both_servers(
    spark: SparkSession, tmp_path: Path, export_connections: dict[str, Connection]
) -> None:
    from spark_jobs.config import export_config
    from spark_jobs.export_bench import write_mode_rows

    rows = write_mode_rows(spark, export_connections, export_config("driving", DataRoot(tmp_path)), 1_000)
    assert [r["name"] for r in rows] == [
        f"export write mode -> {target}: --mode row vs --mode batch (staging write)" for target in export_connections
    ]
    for row in rows:
        assert set(row) == KEYS and row["unit"] == "rows/s" and row["value"] > 0
        batch_rate = int(re.search(r"--mode batch: (\d+) rows/s", row["baseline"])[1])  # type: ignore[index]
        # One INSERT and one commit per row cannot beat one bulk load of the same 1,000 rows.
        assert row["ratio"] == pytest.approx(row["value"] / batch_rate, rel=0.01) and row["ratio"] < 1
        assert re.search(r"row [\d,]+ rows/s, [\d.]+ ms per row \(row mode\); batch .* \(batch mode\)", row["notes"])
