"""Pure transforms of bronze, silver's dedupe and gold's aggregation, on small frames."""

from __future__ import annotations

from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.scenario_loader import load_scenario
from spark_jobs.bronze import to_bronze
from spark_jobs.gold import recompute, recompute_cells
from spark_jobs.schemas import bronze_schema
from spark_jobs.silver import DUPLICATE, NEW, REPLAY, with_dedupe_status

pytestmark = pytest.mark.spark

SCENARIO = load_scenario("driving")
EVENTS = SCENARIO.entities["driver_events"]
GOLD = SCENARIO.gold_table("company_activity_15m")
FILE = "file:/d/landing/driver_events/driver_events-b000012-p01.jsonl"


def test_bronze_keeps_every_line_with_lineage_and_corrupt_record(spark: SparkSession) -> None:
    lines = spark.createDataFrame(
        [('{"event_id":"e-1","speed_kmh":3.5}', FILE), ('{"event_id":"e-2","speed_kmh":"x"}', FILE), ("{oops", FILE)],
        "value string, _source_file string",
    )
    bronze = lines.transform(to_bronze(EVENTS))
    assert bronze.columns == [f.name for f in bronze_schema(EVENTS).fields]
    rows = bronze.orderBy("_raw").collect()
    assert [r["_batch_id"] for r in rows] == [12, 12, 12]
    assert [r["event_id"] for r in rows] == ["e-1", "e-2", None]
    assert rows[0]["_corrupt_record"] is None and rows[0]["speed_kmh"] == 3.5
    assert rows[1]["_corrupt_record"] is not None  # Spark folds the wrong type into _corrupt_record
    assert rows[2]["_corrupt_record"] == "{oops"


def test_dedupe_status_within_batch_against_silver_and_on_replay(spark: SparkSession) -> None:
    schema = "event_id string, _batch_id long, _source_file string, _action string"
    batch = spark.createDataFrame(
        [
            ("e-1", 3, "f3", "valid"),  # first copy in this batch
            ("e-1", 4, "f4", "valid"),  # later copy in this batch
            ("e-2", 4, "f4", "valid"),  # already in silver from another file
            ("e-3", 4, "f4", "valid"),  # already in silver from this very file: a replay
            ("e-4", 4, "f4", "quarantine"),
        ],
        schema,
    )
    silver = spark.createDataFrame([("e-2", 1, "f1"), ("e-3", 4, "f4")], "event_id string, _batch_id long, _source_file string")
    actual = batch.transform(with_dedupe_status(EVENTS, silver)).select("event_id", "_batch_id", "_status")
    expected = spark.createDataFrame(
        [("e-1", 3, NEW), ("e-1", 4, DUPLICATE), ("e-2", 4, DUPLICATE), ("e-3", 4, REPLAY), ("e-4", 4, None)],
        "event_id string, _batch_id long, _status string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _silver_events(spark: SparkSession):
    t = lambda minute: datetime(2026, 1, 5, 6, minute)  # noqa: E731
    rows = [
        ("e-1", "d-1", "start_driving", t(1), 10.0),
        ("e-2", "d-1", "delivered", t(2), 20.0),
        ("e-3", "d-2", "stopped_driving", t(14), None),
        ("e-4", "d-3", "delivered", t(16), 30.0),
    ]
    return spark.createDataFrame(rows, "event_id string, driver_id string, event_type string, event_time timestamp, speed_kmh double")


def test_gold_aggregates_per_company_and_window(spark: SparkSession) -> None:
    drivers = spark.createDataFrame([("d-1", "c-1"), ("d-2", "c-1"), ("d-3", "c-2")], "driver_id string, company_id string")
    actual = recompute(GOLD, _silver_events(spark), {"drivers": drivers})
    rows = {(r["company_id"], r["window_start"].minute): r.asDict() for r in actual.collect()}
    first = rows[("c-1", 0)]
    assert (first["events"], first["start_driving"], first["stopped_driving"], first["delivered"]) == (3, 1, 1, 1)
    assert first["active_drivers"] == 2
    assert first["avg_speed_kmh"] == pytest.approx(15.0)
    assert first["window_end"] == datetime(2026, 1, 5, 6, 15)
    assert rows[("c-2", 15)]["events"] == 1
    assert len(rows) == 2


def test_recomputing_touched_cells_equals_full_recompute(spark: SparkSession) -> None:
    drivers = spark.createDataFrame([("d-1", "c-1"), ("d-2", "c-1"), ("d-3", "c-2")], "driver_id string, company_id string")
    silver = _silver_events(spark)
    late = silver.where(F.col("event_id") == "e-3")  # a late row touches only its own cell
    cells = recompute_cells(GOLD, late, silver, {"drivers": drivers})
    full = recompute(GOLD, silver, {"drivers": drivers})
    assert_df_equality(cells, full.where("company_id = 'c-1'"), ignore_row_order=True, ignore_nullable=True)


def test_gold_appends_cells_of_windows_it_holds_no_row_of_and_merges_the_others(spark: SparkSession, tmp_path) -> None:
    from delta.tables import DeltaTable

    from spark_jobs.gold import merge_into_gold, only_new_windows, touched_windows

    dims = {"drivers": spark.createDataFrame([("d-1", "c-1"), ("d-2", "c-1"), ("d-3", "c-2")], "driver_id string, company_id string")}
    silver = _silver_events(spark).withColumn("_batch_id", F.lit(1).cast("long"))
    path = str(tmp_path / "gold")

    def update(event_id: str) -> bool:
        changed = silver.where(F.col("event_id") == event_id)
        bounds = touched_windows(GOLD, changed, dims)
        appended = only_new_windows(path, bounds)
        merge_into_gold(spark, path, recompute_cells(GOLD, changed, silver, dims, bounds), GOLD, bounds)
        return appended

    update("e-1")  # 06:00 into the new, empty table
    assert update("e-4")  # 06:15: no file holds a row of that window
    assert not update("e-3")  # 06:00 again: merged into the row there
    table = DeltaTable.forPath(spark, path)
    assert [r["operation"] for r in table.history().orderBy("version").collect()] == ["CREATE TABLE", "WRITE", "WRITE", "MERGE"]
    assert_df_equality(table.toDF(), recompute(GOLD, silver, dims), ignore_row_order=True, ignore_nullable=True)
    # The export reads the change feed: appended cells are inserts, the merged one an update.
    changes = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 1).load(path)
    assert sorted((r["_commit_version"], r["_change_type"]) for r in changes.collect()) == [
        (1, "insert"), (2, "insert"), (3, "update_postimage"), (3, "update_preimage")]
