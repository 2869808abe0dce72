"""Gold against computations written here, not the `recompute()` that builds gold: the turbofan
lake's silver is read with delta-rs and aggregated with polars (windows, lookups, every metric
kind the scenario uses, the anomaly flags), and `verify`'s gold check and anomaly scores are
held against those numbers. A tampered gold cell is caught by both."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario import GoldTable, Scenario
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import anomaly_scores, ledger_anomalies, verify, verify_gold
from spark_jobs.config import pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run
from tests.support.generator import generate

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

BATCHES = 8  # 100 engines, 12 readings an hour each: about 9,600 readings, a few stuck days


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, DataRoot]:
    data = DataRoot(tmp_path_factory.mktemp("turbofan-lake"))
    generate(data.root, "turbofan", 17, BATCHES)
    scenario = load_scenario("turbofan")
    run(spark, pipeline_config(scenario, data), GracefulStop())
    return scenario, data


def _table(data: DataRoot, layer: str, name: str) -> pl.DataFrame:
    return pl.read_delta(str(data.table(layer, name)))


def _window(column: str, gold: GoldTable) -> pl.Expr:
    seconds = int(gold.window.size.total_seconds())
    micros = pl.col(column).dt.epoch("us")
    return pl.from_epoch(micros - micros % (seconds * 1_000_000), time_unit="us").dt.replace_time_zone("UTC")


def _percentile(values: list[float], p: float) -> float:
    """The smallest value with at least a share p of the values at or below it (what an exact
    percentile_approx returns on a few values)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]


def expected_aggregate(gold: GoldTable, silver: pl.DataFrame, dimensions: dict[str, pl.DataFrame]) -> list[dict[str, Any]]:
    """A metrics table from silver, with polars."""
    frame = silver
    for lookup in gold.lookups:
        frame = frame.join(dimensions[lookup.entity].select(lookup.key, *lookup.columns), on=lookup.key, how="left")
    frame = frame.with_columns(_window(gold.window.column, gold).alias("window_start"))
    rows = []
    for key, cell in frame.group_by([*gold.group_by, "window_start"]):
        row = dict(zip([*gold.group_by, "window_start"], key, strict=True))
        for metric in gold.metrics:
            chosen = cell.filter(pl.sql_expr(metric.where)) if metric.where else cell
            values = [v for v in chosen[metric.column]] if metric.column else []
            present = [v for v in values if v is not None]
            if metric.agg == "count":
                row[metric.name] = chosen.height if metric.column is None else len(present)
            elif metric.agg == "avg":
                row[metric.name] = sum(present) / len(present) if present else None
            elif metric.agg == "max":
                row[metric.name] = max(present) if present else None
            elif metric.agg == "min":
                row[metric.name] = min(present) if present else None
            elif metric.agg == "count_distinct":
                row[metric.name] = len(set(present))
            elif metric.agg == "percentile":
                assert metric.percentile is not None
                row[metric.name] = _percentile(present, metric.percentile) if present else None
            else:
                raise AssertionError(f"add {metric.agg} to this test")
        rows.append(row)
    return rows


def expected_flags(gold: GoldTable, silver: pl.DataFrame) -> pl.DataFrame:
    """The anomaly flags from silver, with polars: per (engine, window, sensor) in time order."""
    flags = gold.anomalies
    assert flags is not None
    time = gold.window.column
    cell = [*gold.group_by, "window_start", "sensor"]
    long = (
        silver.with_columns(_window(time, gold).alias("window_start"), pl.col(flags.key).cast(pl.String).alias("reading_key"))
        .unpivot(index=[*gold.group_by, "window_start", "reading_key", time], on=flags.sensors, variable_name="sensor", value_name="value")
        .drop_nulls("value")
        .sort([*cell, time, "reading_key"])
        .with_columns(pl.col("value").median().over(cell).alias("median"), pl.len().over(cell).alias("readings"))
        .with_columns((pl.col("value") - pl.col("median")).abs().median().over(cell).alias("mad"))
        .with_columns(pl.when(pl.col("mad") > 0).then((pl.col("value") - pl.col("median")) / (1.4826 * pl.col("mad"))).alias("zscore"))
        .with_columns((pl.col("value") != pl.col("value").shift(1).over(cell)).fill_null(True).cast(pl.Int64).cum_sum().over(cell).alias("run"))
        .with_columns(pl.len().over([*cell, "run"]).alias("run_length"))
    )
    spike = (pl.col("readings") >= flags.min_readings) & (
        (pl.col("zscore").abs() >= flags.z_threshold).fill_null(False) | ((pl.col("mad") == 0) & (pl.col("value") != pl.col("median")))
    )
    return long.with_columns(
        pl.when(pl.col("run_length") >= flags.stuck_run).then(pl.lit("stuck")).when(spike).then(pl.lit("spike")).alias("flag")
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _by_key(rows: Iterable[dict[str, Any]], keys: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in keys): r for r in rows}


def differences(gold: GoldTable, expected: list[dict[str, Any]], actual: pl.DataFrame) -> list[str]:
    """The cells where gold and the polars computation disagree (or one lacks the other's)."""
    keys = [*gold.group_by, "window_start"]
    want, have = _by_key(expected, keys), _by_key(actual.to_dicts(), keys)
    problems = [f"missing {k}" for k in want.keys() - have.keys()] + [f"unexpected {k}" for k in have.keys() - want.keys()]
    for key in want.keys() & have.keys():
        problems += [f"{key} {m.name}: {want[key][m.name]} vs {have[key][m.name]}" for m in gold.metrics
                     if not _close(want[key][m.name], have[key][m.name])]
    return problems


def test_metric_tables_equal_a_polars_computation(lake: tuple[Scenario, DataRoot]) -> None:
    scenario, data = lake
    dimensions = {name: _table(data, "silver", name) for name in scenario.entities}
    checked = 0
    for gold in scenario.gold:
        if gold.anomalies is not None:
            continue
        expected = expected_aggregate(gold, dimensions[gold.source], dimensions)
        assert expected, gold.name
        assert differences(gold, expected, _table(data, "gold", gold.name)) == [], gold.name
        checked += 1
    assert checked == 2


def test_anomaly_flags_equal_a_polars_computation(lake: tuple[Scenario, DataRoot]) -> None:
    scenario, data = lake
    (gold,) = [g for g in scenario.gold if g.anomalies is not None]
    expected = expected_flags(gold, _table(data, "silver", "readings"))
    actual = _table(data, "gold", gold.name)
    keys = ["reading_key", "sensor"]
    assert actual.height == expected.height == actual.select(keys).unique().height > 0
    joined = expected.join(actual, on=keys, how="full", suffix="_gold")
    assert joined.height == expected.height  # the same (reading, sensor) pairs on both sides
    for column in ("value", "median", "mad"):
        assert (joined[column] - joined[f"{column}_gold"]).abs().max() < 1e-9, column  # type: ignore[operator]
    z = joined.filter(pl.col("zscore").is_not_null() | pl.col("zscore_gold").is_not_null())
    assert (z["zscore"] - z["zscore_gold"]).abs().max() < 1e-6  # type: ignore[operator]
    assert (joined["run_length"] == joined["run_length_gold"]).all()
    assert (joined["readings"] == joined["readings_gold"]).all()
    mismatched = joined.filter(pl.col("flag").fill_null("") != pl.col("flag_gold").fill_null(""))
    assert mismatched.height == 0, mismatched.head(5)
    assert set(actual["flag"].drop_nulls()) == {"spike", "stuck"}


def _labels(data: DataRoot, flags: pl.DataFrame, unit: str, time: str) -> set[tuple[str, str, str]]:
    """(reading, sensor, subtype) pairs the manifests' raw JSON label anomalous."""
    labelled: set[tuple[str, str, str]] = set()
    readings = flags.select(unit, "reading_key", "sensor", time).to_dicts()
    index: dict[tuple[str, str], list[dict[str, Any]]] = {}
    present = {(r["reading_key"], r["sensor"]) for r in readings}
    for r in readings:
        index.setdefault((r[unit], r["sensor"]), []).append(r)
    for path in sorted(data.manifest_dir("readings").glob("b*.json")):
        for entry in json.loads(path.read_text()).get("anomalies", []):
            if "key" in entry:
                if (entry["key"], entry["sensor"]) in present:
                    labelled.add((entry["key"], entry["sensor"], entry["subtype"]))
                continue
            start, end = (datetime.fromisoformat(entry[k].replace("Z", "+00:00")) for k in ("start", "end"))
            for r in index.get((entry["engine"], entry["sensor"]), []):
                if start <= r[time] <= end:
                    labelled.add((r["reading_key"], r["sensor"], entry["subtype"]))
    return labelled


def test_verify_scores_the_flags_as_counted_here(spark: SparkSession, lake: tuple[Scenario, DataRoot]) -> None:
    scenario, data = lake
    (gold,) = [g for g in scenario.gold if g.anomalies is not None]
    flags = _table(data, "gold", gold.name)
    labelled = _labels(data, flags, gold.anomaly_unit, gold.window.column)
    flagged = {(r["reading_key"], r["sensor"], r["flag"]) for r in flags.filter(pl.col("flag").is_not_null()).to_dicts()}
    scores = anomaly_scores(spark, gold, spark.read.format("delta").load(str(data.table("gold", gold.name))),
                            ledger_anomalies(data, "readings"))
    assert scores.flags == len(flagged) and scores.right == len(flagged & labelled)
    for subtype in ("spike", "stuck", "drift"):
        mine = {x for x in labelled if x[2] == subtype}
        assert scores.labelled.get(subtype, 0) == len(mine) > 0, subtype
        assert scores.found.get(subtype, 0) == len(mine & flagged), subtype
    # The detector is worth its table: most spikes and stuck readings, few false alarms.
    assert scores.recall("spike") > 0.8 and scores.recall("stuck") > 0.9 and scores.precision > 0.8, scores.summary()
    checks = [c for c in verify(spark, scenario, data) if c.subject == f"gold.{gold.name}"]
    assert [c.ok for c in checks] and all(c.ok for c in checks), checks
    assert {c.check for c in checks} >= {"gold = recomputation from silver", "anomaly flags: precision", "anomaly flags: recall"}


def test_a_tampered_gold_cell_fails_verify_and_this_computation(spark: SparkSession, lake: tuple[Scenario, DataRoot],
                                                                tmp_path: Path) -> None:
    scenario, data = lake
    copy = DataRoot(tmp_path / "copy")
    shutil.copytree(data.root, copy.root, symlinks=True)
    gold = scenario.gold[0]
    table = _table(copy, "gold", gold.name)
    victim = table.row(0, named=True)
    condition = " AND ".join(f"{k} = '{victim[k]}'" for k in gold.group_by)
    spark.sql(f"UPDATE delta.`{copy.table('gold', gold.name)}` SET readings = readings + 1 "
              f"WHERE {condition} AND window_start = timestamp'{victim['window_start']:%Y-%m-%d %H:%M:%S}'")
    silver = _table(copy, "silver", gold.source)
    problems = differences(gold, expected_aggregate(gold, silver, {}), _table(copy, "gold", gold.name))
    assert len(problems) == 1 and "readings" in problems[0], problems
    failed = [c for c in verify_gold(spark, scenario, copy) if not c.ok]
    assert [c.subject for c in failed] == [f"gold.{gold.name}"]
    assert "1 cells differ" in failed[0].detail
