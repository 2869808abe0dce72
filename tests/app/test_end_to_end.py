"""The whole path on the real stack: generate -> bronze -> silver -> gold -> PostgreSQL + MariaDB.

Run once, check every ledger invariant and that Delta and both databases hold the same gold;
run everything again and check that nothing changed anywhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import Connection, count_rows, run_sql
from medallion.demo import gold_rows_in_databases
from medallion.verify import verify
from spark_jobs import export
from spark_jobs.config import export_config, pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def versions(spark: SparkSession, data: DataRoot) -> dict[str, int]:
    found = {}
    for log in sorted(data.lake.glob("**/_delta_log")):
        table = log.parent
        if "_metrics" not in table.parts:
            found[str(table.relative_to(data.lake))] = DeltaTable.forPath(spark, str(table)).history(1).first()["version"]
    return found


def database_state(connections: dict[str, Connection], tables: list[str]) -> dict[tuple[str, str], object]:
    state: dict[tuple[str, str], object] = {}
    for kind, connection in connections.items():
        for table in tables:
            state[(kind, table)] = count_rows(connection, table)
        state[(kind, "ledger")] = run_sql(connection, "SELECT COUNT(*) FROM _medallion_exports")[0][0]
    return state


def test_whole_path_twice_on_real_servers(spark: SparkSession, tmp_path: Path, export_connections: dict[str, Connection]) -> None:
    data = DataRoot(tmp_path)
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small",
                    "--seed", "21", "--data", str(data.root), "--batches", "4", "--quiet"], check=True)
    scenario = load_scenario("driving", profile="small")
    cfg = pipeline_config(scenario, data)
    export_cfg = export_config(scenario, data)

    run(spark, cfg, GracefulStop())
    results = export.export_gold(spark, export_cfg, export_connections)
    assert {r.mode for r in results} == {"snapshot"} and all(r.rows_upserted > 0 for r in results)
    assert [c for c in verify(spark, scenario, data) if not c.ok] == []
    compared = gold_rows_in_databases(spark, scenario, data, export_connections)
    assert all(same for *_, same in compared), compared
    assert {rows for *_, rows, _ in compared} != {0}

    delta_before = versions(spark, data)
    db_before = database_state(export_connections, scenario.export_tables)
    run(spark, cfg, GracefulStop())
    again = export.export_gold(spark, export_cfg, export_connections)
    assert {r.mode for r in again} == {"skipped"}
    assert versions(spark, data) == delta_before
    assert database_state(export_connections, scenario.export_tables) == db_before
    assert all(same for *_, same in gold_rows_in_databases(spark, scenario, data, export_connections))
