"""`medallion bench`: every hot path against its baseline, measured in the same run.

This machine (and most laptops and CI runners) is shared and noisy, so each benchmark reports a
ratio to a baseline timed right beside it, not an absolute time alone. Groups:

- `generator`: records/s on one core, vs a row-by-row Faker + json.dumps generator, vs copying
  the same bytes on the same disk, vs the generator's floor (the declared draws, the bytes
  hashed and written: the bound for the Faker ratio); memory over many batches
  (generators/bench.py);
- `pipeline`: landing -> gold vs a bare JSON -> Parquet copy and vs the three-layer floor (bare
  Delta jobs: the bound for a pipeline that does more than them), 1x -> 10x scaling, a
  ~100-line batch vs a copy of its files, continuous latency p50/p95 with a 1 s trigger, a
  micro-batch against 10 M silver rows vs an empty silver, the whole `pipeline --once` process
  vs a copy process, files after 100 micro-batches (spark_jobs/bench.py);
- `export`: gold -> PostgreSQL vs a psycopg COPY of the same rows, gold -> MariaDB vs a PyMySQL
  multi-row INSERT, each into a throwaway server started here (spark_jobs/export_bench.py).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medallion.contracts.errors import MedallionError

GROUPS = ("generator", "pipeline", "export")


def run_group(
    group: str, quick: bool, conf: Mapping[str, str] | None = None, log_level: str | None = None
) -> list[dict[str, Any]]:
    """Run one benchmark group; each result is a dict (name, value, unit, baseline, ratio, goal, ok, notes).

    `conf` and `log_level` (`--conf`, `--log-level`) go to the Spark sessions of the Spark groups.
    """
    if group == "generator":
        from generators.bench import run_benchmarks as generator_benchmarks

        results = generator_benchmarks(quick)
    elif group == "pipeline":
        from spark_jobs.bench import run_benchmarks as pipeline_benchmarks

        results = pipeline_benchmarks(quick, conf, log_level)
    elif group == "export":
        from medallion.local import MariaDBServer, PostgresServer
        from spark_jobs.export_bench import run_benchmarks as export_benchmarks

        with PostgresServer() as postgres, MariaDBServer() as mariadb:
            results = export_benchmarks(quick, {"postgres": postgres.connection, "mysql": mariadb.connection},
                                        conf, log_level)
    else:
        raise MedallionError(f"unknown benchmark group {group!r}; use one of {', '.join(GROUPS)}")
    return [{"group": group, **result} for result in results]


def render(results: list[dict[str, Any]]) -> None:
    """Print the results as one table."""
    table = Table(title="medallion bench (ratios are measured in this run)")
    for column in ("group", "benchmark", "value", "baseline", "ratio", "goal", "ok"):
        table.add_column(column, overflow="fold")
    for r in results:
        value = r.get("value")
        shown = f"{value:,}" if isinstance(value, (int, float)) else str(value)
        mark = "-" if r.get("ok") is None else ("[green]yes[/green]" if r["ok"] else "[red]no[/red]")
        table.add_row(r["group"], r["name"], f"{shown} {r.get('unit', '')}".strip(), str(r.get("baseline", "")),
                      "" if r.get("ratio") is None else str(r["ratio"]), str(r.get("goal", "")), mark)
    Console(width=180).print(table)


def run_bench(
    groups: list[str] | None = None, quick: bool = False, out: Path | None = None,
    conf: Mapping[str, str] | None = None, log_level: str | None = None,
) -> list[dict[str, Any]]:
    """`medallion bench`: run the groups (default all), print the table, write JSON to `out` if given."""
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    for group in groups or GROUPS:
        results += run_group(group, quick, conf, log_level)
    render(results)
    print(f"{len(results)} benchmarks in {time.perf_counter() - started:.0f}s on {platform.machine()}, "
          f"{platform.python_implementation()} {platform.python_version()}")
    if out:
        Path(out).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return results
