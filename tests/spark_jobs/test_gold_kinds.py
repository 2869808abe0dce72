"""Gold beyond windowed columns: metrics over expressions, lifetime (windowless) aggregates and
top-N per group, maintained incrementally by `gold.update` and equal to a recomputation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from medallion.contracts.scenario import GoldTable
from spark_jobs import gold as gold_job

pytestmark = [pytest.mark.spark]

SCHEMA = "user_id string, segment string, product string, quantity int, unit_price_eur double, created_at timestamp, _batch_id bigint"
TOP = GoldTable.model_validate({
    "name": "top_products", "source": "line_items", "group_by": ["segment", "product"],
    "window": {"column": "created_at", "size": "1d"},
    "metrics": [{"name": "revenue", "agg": "sum", "expression": "quantity * unit_price_eur"},
                {"name": "customers", "agg": "count_distinct", "column": "user_id"}],
    "top": {"n": 2, "by": "revenue", "per": ["segment"]},
})
LIFETIME = GoldTable.model_validate({
    "name": "user_spend", "source": "line_items", "group_by": ["user_id"],
    "metrics": [{"name": "spend", "agg": "sum", "expression": "quantity * unit_price_eur + 1"},
                {"name": "products", "agg": "count_distinct", "column": "product"}],
})


def at(day: int) -> datetime:
    return datetime(2026, 1, day, 12)


def frame(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, SCHEMA)


def maintain(spark: SparkSession, path: str, table: GoldTable, silver: DataFrame, changed: DataFrame) -> list[tuple[Any, ...]]:
    """What gold.update does for one micro-batch, then the gold rows (checked against a recompute)."""
    bounds = gold_job.touched_windows(table, changed, {})
    rows = gold_job.recompute_cells(table, changed, silver, {}, bounds)
    gold_job.merge_into_gold(spark, path, rows, table, bounds)
    held = spark.read.format("delta").load(path)
    recomputed = gold_job.recompute(table, silver, {}).select(*held.columns)
    assert held.exceptAll(recomputed).count() == 0 and recomputed.exceptAll(held).count() == 0
    return sorted(tuple(r) for r in held.drop("window_end").collect())


def test_top_n_per_group_drops_what_falls_out_and_keeps_other_windows(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "top")
    first = [("u1", "vip", "a", 2, 5.0, at(5), 0), ("u2", "vip", "b", 1, 5.0, at(5), 0), ("u3", "vip", "c", 1, 1.0, at(5), 0),
             ("u1", "new", "a", 1, 3.0, at(5), 0), ("u1", "vip", "c", 1, 1.0, at(6), 0)]
    silver = frame(spark, first)
    held = maintain(spark, path, TOP, silver, silver)
    assert held == [
        ("new", "a", datetime(2026, 1, 5), 1, 3.0, 1),
        ("vip", "a", datetime(2026, 1, 5), 1, 10.0, 1),
        ("vip", "b", datetime(2026, 1, 5), 2, 5.0, 1),
        ("vip", "c", datetime(2026, 1, 6), 1, 1.0, 1),
    ]
    # A late big order of c on day 5: c climbs to first, b falls out of the top 2 (deleted in
    # the same commit); day 6 and the `new` segment are untouched.
    late = [("u4", "vip", "c", 4, 5.0, at(5), 1)]
    held = maintain(spark, path, TOP, frame(spark, first + late), frame(spark, late))
    assert held == [
        ("new", "a", datetime(2026, 1, 5), 1, 3.0, 1),
        ("vip", "a", datetime(2026, 1, 5), 2, 10.0, 1),
        ("vip", "c", datetime(2026, 1, 5), 1, 21.0, 2),
        ("vip", "c", datetime(2026, 1, 6), 1, 1.0, 1),
    ]
    changes = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(path)
    assert changes.where("_change_type = 'delete' AND product = 'b'").count() == 1


def test_lifetime_aggregate_over_an_expression_has_no_window(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "lifetime")
    first = [("u1", "vip", "a", 2, 2.5, at(1), 0), ("u2", "new", "b", 1, 4.0, at(2), 0)]
    silver = frame(spark, first)
    assert maintain(spark, path, LIFETIME, silver, silver) == [("u1", 6.0, 1), ("u2", 5.0, 1)]
    assert LIFETIME.key_columns == ["user_id"]
    # Months later, u1 buys again: the one lifetime row of u1 is updated, u2's stays.
    later = [("u1", "vip", "c", 3, 1.0, datetime(2026, 6, 1), 1)]
    assert maintain(spark, path, LIFETIME, frame(spark, first + later), frame(spark, later)) == [("u1", 10.0, 2), ("u2", 5.0, 1)]
    assert "window_start" not in spark.read.format("delta").load(path).columns
