"""Inside the Docker stack (run by scripts/docker_test.py in the `export` service's container):
`medallion verify`'s checks hold, and every exported gold table, read from Delta on the cluster,
equals its rows in PostgreSQL and in MySQL, row for row. Prints the checks and the rows per table
and database; exits 1 on any failed check or difference.

Values are compared after one normalisation both sides share: timestamps as naive UTC,
decimals and floats rounded to 9 significant digits, booleans as 0/1 (MySQL has no boolean).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from medallion.contracts.errors import VerificationFailed
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import resolve_connections
from medallion.databases.dialects import dialect_for
from medallion.databases.sql import run_sql
from medallion.verify import report_checks, verify
from spark_jobs.session import SessionOptions, build_session


def normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return float(f"{float(value):.9g}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--master", required=True)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    data = DataRoot(args.data)
    connections = resolve_connections(scenario.export, ("postgres", "mysql"))
    spark = build_session(SessionOptions(app_name="medallion-stack-check", master=args.master, shuffle_partitions=2))
    failures = 0
    try:
        # `medallion verify` (the same checks, the same output), in this application.
        try:
            report_checks(verify(spark, scenario, data))
        except VerificationFailed as error:
            print(f"verify: {error}")
            failures += 1
        for table in scenario.export_tables:
            gold = spark.read.format("delta").load(str(data.table("gold", table)))
            expected = sorted(tuple(normalise(v) for v in row) for row in gold.collect())
            if not expected:
                print(f"gold.{table}: no rows: nothing to compare")
                failures += 1
            for kind, connection in connections.items():
                dialect = dialect_for(kind)
                columns = ", ".join(dialect.quote(c, "gold column") for c in gold.columns)
                select = f"SELECT {columns} FROM {dialect.quote(table)}"
                actual = sorted(tuple(normalise(v) for v in row) for row in run_sql(connection, select))
                same = actual == expected
                print(f"{kind}.{table}: {len(actual)} rows, Delta gold {len(expected)} rows: "
                      f"{'equal' if same else 'DIFFERENT'}")
                if not same:
                    failures += 1
                    missing, extra = set(expected) - set(actual), set(actual) - set(expected)
                    print(f"  in gold only: {sorted(missing)[:3]}; in {kind} only: {sorted(extra)[:3]}")
    finally:
        spark.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
