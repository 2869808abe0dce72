"""Retail's relational model served from silver into real PostgreSQL and MariaDB: PRIMARY and
FOREIGN KEYs, parents first, exactly once (snapshot, then only new rows, then nothing), and the
shop's analytics views equal to the same queries computed in plain Python from silver."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import Connection, run_sql
from medallion.verify import verify
from spark_jobs import export
from spark_jobs.config import export_config, pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run
from tests.support.generator import generate

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

SERVED = ["users", "transactions", "line_items"]


def silver(spark: SparkSession, data: DataRoot, name: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.read.format("delta").load(str(data.table("silver", name))).collect()]


def plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def db(connection: Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(plain(v) for v in row) for row in run_sql(connection, sql)]


def expected_views(users: list[dict[str, Any]], transactions: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The four queries, computed independently from the silver rows."""
    by_user: dict[str, list[float]] = defaultdict(list)
    for t in transactions:
        by_user[t["user_id"]].append(t["amount"])
    known = {u["user_id"]: u for u in users}
    avg = sorted(
        (uid, known[uid]["name"], known[uid]["city"], sum(a) / len(a), len(a)) for uid, a in by_user.items() if uid in known
    )
    spend = sorted(((u["user_id"], u["name"], len(by_user[u["user_id"]]), sum(by_user[u["user_id"]])) for u in users),
                   key=lambda r: (-r[3], r[0]))[:10]
    per_product: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        per_product[item["product"]].append(item)
    products = sorted(
        (p, sum(i["quantity"] for i in rows), sum(i["unit_price_eur"] for i in rows) / len(rows),
         sum(i["line_total"] for i in rows), len({i["user_id"] for i in rows}))
        for p, rows in per_product.items()
    )
    transaction_ids = {t["transaction_id"] for t in transactions}
    linked = [
        ("users_with_transactions", len({t["user_id"] for t in transactions} & set(known))),
        ("transactions_with_line_items", len({i["transaction_id"] for i in items} & transaction_ids)),
    ]
    return {"avg_transaction_value_per_user": avg, "top_users_by_spend": spend,
            "unique_customers_per_product": products, "users_with_transactions": linked}


def assert_rows_match(found: list[tuple[Any, ...]], wanted: list[tuple[Any, ...]]) -> None:
    """Equal row by row; numbers within 1e-9 relative (the databases sum doubles in their own order)."""
    assert len(found) == len(wanted)
    for got, want in zip(found, wanted, strict=True):
        assert len(got) == len(want), (got, want)
        for a, b in zip(got, want, strict=True):
            same = a == pytest.approx(b, rel=1e-9) if isinstance(b, (int, float)) and not isinstance(b, bool) else a == b
            assert same, (got, want)


def check_views(spark: SparkSession, data: DataRoot, connections: dict[str, Connection]) -> None:
    wanted = expected_views(*(silver(spark, data, name) for name in SERVED))
    assert all(wanted.values())
    for connection in connections.values():
        assert_rows_match(sorted(db(connection, "SELECT * FROM avg_transaction_value_per_user")), wanted["avg_transaction_value_per_user"])
        assert_rows_match(db(connection, "SELECT * FROM top_users_by_spend"), wanted["top_users_by_spend"])
        assert_rows_match(sorted(db(connection, "SELECT * FROM unique_customers_per_product")), wanted["unique_customers_per_product"])
        assert sorted(db(connection, "SELECT * FROM users_with_transactions")) == sorted(wanted["users_with_transactions"])
        assert db(connection, "SELECT * FROM orphaned_rows") == []


def foreign_keys(connection: Connection) -> set[tuple[str, str]]:
    sql = (
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name "
        "AND tc.table_name = kcu.table_name AND tc.table_schema = kcu.table_schema "
        "WHERE tc.constraint_type = 'FOREIGN KEY'"
    )
    return {(str(t), str(c)) for t, c in run_sql(connection, sql)}


def served_results(results: list[export.ExportResult], target: str) -> dict[str, export.ExportResult]:
    return {r.table: r for r in results if r.target == target and r.table in SERVED}


def export_once(spark: SparkSession, scenario: Scenario, data: DataRoot, connections: dict[str, Connection]) -> list[export.ExportResult]:
    run(spark, pipeline_config(scenario, data), GracefulStop())
    return export.export_gold(spark, export_config(scenario, data), connections)


def test_retail_is_served_relationally_exactly_once_with_its_views(
    spark: SparkSession, tmp_path: Path, export_connections: dict[str, Connection]
) -> None:
    data = DataRoot(tmp_path)
    scenario = load_scenario("retail", profile="growth")
    generate(tmp_path, "retail", 11, 3, "growth")
    results = export_once(spark, scenario, data, export_connections)
    # The new fields, their defects and the new gold kinds still reconcile with the ledger.
    assert [c for c in verify(spark, scenario, data) if not c.ok] == []
    for target, connection in export_connections.items():
        served = served_results(results, target)
        assert list(served) == SERVED  # parents first
        for name in SERVED:
            rows = silver(spark, data, name)
            assert served[name].mode == "snapshot" and served[name].rows_upserted == len(rows) > 0
            assert served[name].orphans == 0
            key = scenario.entities[name].key
            assert {r[0] for r in run_sql(connection, f"SELECT {key} FROM {name}")} == {r[key] for r in rows}
        assert foreign_keys(connection) == {
            ("transactions", "user_id"), ("line_items", "transaction_id"), ("line_items", "user_id"),
        }
        views = [r for r in results if r.target == target and r.mode == "views"]
        assert views and set(views[0].views) == {*scenario.export.views, "orphaned_rows"}
        user = silver(spark, data, "users")[0]
        assert db(connection, f"SELECT name, email, age, city FROM users WHERE user_id = '{user['user_id']}'") == [
            (user["name"], user["email"], user["age"], user["city"])
        ]
    check_views(spark, data, export_connections)

    # Nothing new: every served table is skipped (the ledger holds its silver version).
    again = export.export_gold(spark, export_config(scenario, data), export_connections)
    assert {r.mode for r in again if r.table in SERVED} == {"skipped"}

    # Two more runs of the source: only the new rows travel, parents first, and the views follow.
    before = {name: len(silver(spark, data, name)) for name in SERVED}
    generate(tmp_path, "retail", 11, 5, "growth")
    grown = export_once(spark, scenario, data, export_connections)
    for target in export_connections:
        served = served_results(grown, target)
        for name in SERVED:
            assert served[name].mode == "changes"
            assert served[name].rows_upserted == len(silver(spark, data, name)) - before[name] > 0
    for connection in export_connections.values():
        for name in SERVED:
            assert run_sql(connection, f"SELECT COUNT(*) FROM {name}")[0][0] == len(silver(spark, data, name))
        ledger = run_sql(connection, "SELECT mode FROM _medallion_exports WHERE table_name = 'line_items' ORDER BY export_id")
        assert [m for (m,) in ledger] == ["snapshot", "changes"]
    check_views(spark, data, export_connections)
