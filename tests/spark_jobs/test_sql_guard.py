"""Scenario SQL is parsed by Spark's parser and allowed only over the entity's columns and a
vetted function list; every built-in scenario's SQL passes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario import Expectation
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario
from spark_jobs import sql_guard
from spark_jobs.gold import recompute
from spark_jobs.silver import classify

pytestmark = pytest.mark.spark

COLUMNS = ["speed_kmh", "event_type", "event_time", "driver_id"]
FIELD = "entities.driver_events.expectations[2].sql"

ALLOWED = [
    "speed_kmh < 130",
    "SPEED_KMH BETWEEN 0 AND 250",  # Spark resolves names case-insensitively
    "event_type IN ('delivered', 'start_driving') AND event_type IS NOT NULL",
    "event_type NOT LIKE 'x%' OR coalesce(speed_kmh, 0) >= 0",
    "CASE WHEN speed_kmh > 100 THEN 'fast' ELSE 'slow' END <> 'odd'",
    "CAST(speed_kmh AS INT) % 2 = 0 OR try_cast(event_type AS INT) IS NULL",
    "hour(event_time) BETWEEN 6 AND 22 AND date_trunc('hour', event_time) <= event_time",
    "lower(trim(event_type)) || '-' = 'delivered-'",
    "abs(round(speed_kmh, 1)) < 1e3 AND NOT (speed_kmh IS NULL)",
    "timestamp '2026-01-01 00:00:00' < event_time",
]

REFUSED = [
    ("reflect('java.lang.System', 'exit', '0') IS NULL", "function reflect is not allowed"),
    ("java_method('java.lang.Runtime', 'getRuntime') IS NULL", "function java_method is not allowed"),
    ("try_reflect('java.lang.System', 'getenv', 'HOME') IS NULL", "function try_reflect is not allowed"),
    ("input_file_name() <> ''", "function input_file_name is not allowed"),
    ("read_files('/etc/passwd') IS NULL", "function read_files is not allowed"),
    ("speed_kmh < (SELECT max(x) FROM secrets)", "subqueries are not allowed"),
    ("EXISTS (SELECT 1 FROM secrets)", "subqueries are not allowed"),
    ("driver_id IN (SELECT id FROM secrets)", "subqueries are not allowed"),
    ("speed_kmh < sum(speed_kmh)", "function sum is not allowed"),
    ("count(*) > 0", "function count is not allowed"),
    ("speed_kmh < avg(speed_kmh) OVER (PARTITION BY driver_id)", "window functions are not allowed"),
    ("exists(array(speed_kmh), x -> x > 1)", "function exists is not allowed"),
    ("rand() < 0.5", "function rand is not allowed"),
    ("current_date() > event_time", "function current_date is not allowed"),
    ("secret_column > 1", "unknown column secret_column"),
    ("_raw LIKE '%x%'", "unknown column _raw"),
    ("current_date > event_time", "unknown column current_date"),
    ("speed_kmh.x > 1", "unknown column speed_kmh.x"),
    ("system.builtin.lower(event_type) = 'x'", "function system.builtin.lower is not allowed"),
    ("event_type RLIKE '(a+)+$'", "RLIKE"),
    ("IDENTIFIER('speed_kmh') > 1", "IDENTIFIER"),
    ("speed_kmh > :limit", "parameters are not allowed"),
    ("named_struct('a', speed_kmh) IS NULL", "function named_struct is not allowed"),
    ("speed_kmh > 1; DROP TABLE x", "not a valid SQL expression"),
    ("concat(DISTINCT event_type) = ''", "DISTINCT"),
]


def test_every_built_in_scenario_sql_passes(spark: SparkSession) -> None:
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    assert len(names) >= 5
    vetted = 0
    for name in names:
        scenario = load_scenario(name)
        sql_guard.check_scenario(spark, scenario)  # raises on any refused expression
        vetted += len(sql_guard.scenario_expressions(scenario))
    assert vetted >= 8  # the built-ins do carry expectations and filtered metrics


@pytest.mark.parametrize("text", ALLOWED)
def test_expressions_over_own_columns_and_vetted_functions_pass(spark: SparkSession, text: str) -> None:
    assert sql_guard.vet(spark, text, COLUMNS, FIELD) == []


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refused_expressions_name_the_field_and_the_reason(spark: SparkSession, text: str, reason: str) -> None:
    problems = sql_guard.vet(spark, text, COLUMNS, FIELD)
    assert problems, text
    assert all(p.startswith(f"{FIELD}: ") for p in problems)
    assert any(reason in p for p in problems), problems
    assert all(len(p) < 500 for p in problems)


def test_check_scenario_names_the_scenario_field(spark: SparkSession) -> None:
    scenario = load_scenario("driving")
    events = scenario.entities["driver_events"]
    bad = events.model_copy(update={"expectations": [*events.expectations, Expectation(name="x", sql="reflect('a', 'b') IS NULL")]})
    scenario = scenario.model_copy(update={"entities": {**scenario.entities, "driver_events": bad}})
    with pytest.raises(ConfigError) as info:
        sql_guard.check_scenario(spark, scenario)
    index = len(bad.expectations) - 1
    assert info.value.problems == [
        f"entities.driver_events.expectations[{index}].sql: function reflect is not allowed in scenario SQL"
    ]


def test_silver_refuses_an_unvetted_expectation_before_any_query_runs(spark: SparkSession) -> None:
    events = load_scenario("driving").entities["driver_events"]
    # Would read a JVM system property into the quarantine reasons' evaluation on the old code.
    entity = events.model_copy(
        update={"expectations": [Expectation(name="sneaky", sql="reflect('java.lang.System', 'getProperty', 'user.home') IS NOT NULL")]}
    )
    df = spark.createDataFrame([("{}", "f", 1)], "_raw string, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.current_timestamp()
    )
    keys = spark.createDataFrame([("d-1",)], "_ref_key string")
    with pytest.raises(ConfigError) as info:
        df.transform(classify(entity, {"drivers": keys}))
    assert info.value.problems == ["expectations[0].sql (sneaky): function reflect is not allowed in scenario SQL"]


def test_gold_refuses_an_unvetted_where_before_any_query_runs(spark: SparkSession) -> None:
    scenario = load_scenario("driving")
    gold = scenario.gold_table("company_activity_15m")
    metric = gold.metrics[1].model_copy(update={"where": "java_method('java.lang.System', 'getenv', 'HOME') IS NOT NULL"})
    gold = gold.model_copy(update={"metrics": [gold.metrics[0], metric]})
    silver = spark.createDataFrame(
        [("e-1", "d-1", "delivered", datetime(2026, 1, 5, 6, 1), 10.0)],
        "event_id string, driver_id string, event_type string, event_time timestamp, speed_kmh double",
    )
    drivers = spark.createDataFrame([("d-1", "c-1")], "driver_id string, company_id string")
    with pytest.raises(ConfigError) as info:
        recompute(gold, silver, {"drivers": drivers})
    assert info.value.problems == [
        f"gold.company_activity_15m.metrics[1].where ({metric.name}): function java_method is not allowed in scenario SQL"
    ]


def test_the_pipeline_refuses_unvetted_sql_before_any_query_runs(spark: SparkSession, tmp_path: Path) -> None:
    from medallion.contracts.layout import DataRoot
    from spark_jobs import pipeline
    from spark_jobs.config import PipelineConfig

    scenario = load_scenario("driving")
    events = scenario.entities["driver_events"]
    sneaky = Expectation(name="sneaky", sql="java_method('java.lang.System', 'getenv', 'HOME') IS NOT NULL")
    entities = {**scenario.entities, "driver_events": events.model_copy(update={"expectations": [sneaky]})}
    cfg = PipelineConfig(scenario=scenario.model_copy(update={"entities": entities}), data=DataRoot(tmp_path))
    with pytest.raises(ConfigError) as info:
        pipeline.run(spark, cfg)
    assert "function java_method is not allowed" in str(info.value)
    assert not (tmp_path / "lake" / "bronze").exists(), "no layer ran"
