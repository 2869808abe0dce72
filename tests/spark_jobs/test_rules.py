"""Silver's classification of raw lines: each defect kind gets its rule, clean lines none."""

from __future__ import annotations

import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.scenario_loader import load_scenario
from spark_jobs.rules import rules_for
from spark_jobs.silver import classify

pytestmark = pytest.mark.spark

EVENTS = load_scenario("driving").entities["driver_events"]
DRIVERS_OK = ["d-0000001", "d-0000002"]


def event(**overrides: object) -> str:
    record = {
        "event_id": "e-1", "driver_id": "d-0000001", "event_type": "delivered",
        "event_time": "2026-01-05T06:01:00.250Z", "speed_kmh": 42.5, "latitude": 52.3,
        "longitude": 4.9, "app_version": None,
    }
    record.update(overrides)
    return json.dumps({k: v for k, v in record.items() if v != "<absent>"}, separators=(",", ":"))


def classify_lines(spark: SparkSession, lines: list[str | bytes]):
    raw = [(line if isinstance(line, bytes) else line.encode("utf-8")) for line in lines]
    rows = [(data, "file:/x/landing/driver_events/driver_events-b000001-p00.jsonl", 1) for data in raw]
    df = spark.createDataFrame(rows, "_raw binary, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.current_timestamp()
    )
    keys = spark.createDataFrame([(d,) for d in DRIVERS_OK], "_ref_key string")
    return df.transform(classify(EVENTS, {"drivers": keys}))


CASES = [
    (event(), []),
    (event(app_version="4.3.0"), []),
    (event(speed_kmh=None), []),
    (event(event_type=None), ["event_type_required"]),
    (event(event_type="<absent>"), ["event_type_required"]),
    (event(speed_kmh="n/a"), ["speed_kmh_type"]),
    (event(speed_kmh={"v": 1}), ["speed_kmh_type"]),
    (event(event_type=["delivered"]), ["event_type_type"]),
    (event(event_time="yesterday"), ["event_time_type"]),
    (event(speed_kmh="42.5"), ["schema_drift"]),
    (event(event_id=7), ["schema_drift"]),
    (event(event_time=1767592860), ["schema_drift"]),
    (event(speed_kmh="<absent>", speed=42.5), ["schema_drift"]),
    (event(speed_kmh=-1.0), ["speed_kmh_range"]),
    (event(event_type="teleported"), ["event_type_enum"]),
    (event(driver_id="d-9999999"), ["driver_id_fk"]),
    (event(event_type=None, speed_kmh=999.0), ["event_type_required", "speed_kmh_range"]),
    (event()[:-9], ["malformed_json"]),
    (event() + " junk", ["malformed_json"]),
    (event() + "}", ["malformed_json"]),
    (event() + ' {"a":1}', ["malformed_json"]),
    # Content after the object that a parser reading one value (or a `[...]` wrapper) would miss.
    (event() + ",", ["malformed_json"]),
    (event() + ", null", ["malformed_json"]),
    (event() + "]", ["malformed_json"]),
    (event() + "] junk", ["malformed_json"]),
    (event() + '] {"a":1}', ["malformed_json"]),
    (event() + '"x"', ["malformed_json"]),
    (event() + "<EOF>", ["malformed_json"]),
    (event(event_type="a]b"), ["event_type_enum"]),
    (" " + event() + " ", []),
    ('["not", "an", "object"]', ["malformed_json"]),
    ("", ["malformed_json"]),
]


def test_each_defect_gets_its_reason(spark: SparkSession) -> None:
    # One Spark job for all cases (a job per case would take a minute on two cores).
    lines = [line for line, _ in CASES]
    rows = classify_lines(spark, lines).select("_raw", "_reasons").collect()
    actual = {bytes(row["_raw"]).decode(): row["_reasons"] for row in rows}
    assert {line: actual[line] for line in lines} == {line: expected for line, expected in CASES}


def test_invalid_utf8_is_malformed(spark: SparkSession, tmp_path) -> None:
    # Python strings can't carry invalid UTF-8 into Spark, so read real bytes from a file.
    path = tmp_path / "driver_events-b000001-p00.jsonl"
    invalid = event(event_id="e-X").encode().replace(b"e-X", b"e-\xff\xfe")
    path.write_bytes(invalid + b"\n" + event().encode() + b"\n")
    df = (
        spark.read.text(str(path))
        .select(F.col("value").cast("binary").alias("_raw"), F.lit(str(path)).alias("_source_file"), F.lit(1).cast("long").alias("_batch_id"))
        .withColumn("_ingested_at", F.current_timestamp())
    )
    keys = spark.createDataFrame([(d,) for d in DRIVERS_OK], "_ref_key string")
    result = [r["_reasons"] for r in df.transform(classify(EVENTS, {"drivers": keys})).collect()]
    assert sorted(result) == [[], ["malformed_json"]]


def test_typed_values_and_action(spark: SparkSession) -> None:
    actual = classify_lines(spark, [event(), event(speed_kmh="n/a")]).select(
        "event_id", "speed_kmh", "event_time", "_action", "_kinds"
    )
    expected = spark.createDataFrame(
        [
            ("e-1", 42.5, "2026-01-05 06:01:00.25", "valid", []),
            ("e-1", None, "2026-01-05 06:01:00.25", "quarantine", ["wrong_type"]),
        ],
        "event_id string, speed_kmh double, event_time string, _action string, _kinds array<string>",
    ).withColumn("event_time", F.col("event_time").cast("timestamp"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_key_is_kept_for_malformed_lines_that_still_have_one(spark: SparkSession) -> None:
    rows = classify_lines(spark, [event(event_id="e-77")[:40]]).select("_key", "_reasons").first()
    assert rows["_key"] == "e-77" and rows["_reasons"] == ["malformed_json"]


def test_catalogue_lists_rules_by_kind() -> None:
    kinds = {rule.name: rule.kind for rule in rules_for(EVENTS)}
    assert kinds["malformed_json"] == "malformed_json"
    assert kinds["driver_id_required"] == "null_required"
    assert kinds["speed_kmh_range"] == "out_of_range"
    assert kinds["event_type_enum"] == "out_of_range"
    assert kinds["driver_id_fk"] == "orphan_fk"
    assert kinds["parked_when_stopped"] == "expectation"
    assert "speed_kmh_required" not in kinds  # speed is nullable


def test_expectation_actions_decide_the_fate(spark: SparkSession) -> None:
    from medallion.contracts.scenario import Expectation

    entity = EVENTS.model_copy(
        update={
            "expectations": [
                Expectation(name="slow_enough", sql="speed_kmh < 100", action="warn"),
                Expectation(name="not_too_slow", sql="speed_kmh > 5", action="drop"),
                Expectation(name="north_enough", sql="latitude > 50", action="quarantine"),
            ]
        }
    )
    lines = [event(speed_kmh=150.0), event(speed_kmh=1.0), event(latitude=10.0), event(), event(speed_kmh="x")]
    rows = [(line.encode(), "f", 1) for line in lines]
    df = spark.createDataFrame(rows, "_raw binary, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.current_timestamp()
    )
    keys = spark.createDataFrame([(d,) for d in DRIVERS_OK], "_ref_key string")
    result = {bytes(r["_raw"]).decode(): (r["_reasons"], r["_action"]) for r in df.transform(classify(entity, {"drivers": keys})).collect()}
    assert [result[line] for line in lines] == [
        (["slow_enough"], "valid"),
        (["not_too_slow"], "drop"),
        (["north_enough"], "quarantine"),
        ([], "valid"),
        (["speed_kmh_type"], "quarantine"),  # expectations are not evaluated on broken rows
    ]
