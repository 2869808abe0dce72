"""`medallion export --mode row|batch` (and the spark-submit job's): parsed, defaulted, refused."""

from __future__ import annotations

import pytest

from medallion.cli import build_parser
from spark_jobs.export import ExportResult, write_summary


def test_mode_defaults_to_batch_and_takes_row() -> None:
    parser = build_parser()
    base = ["export", "--scenario", "traffic", "--data", "d"]
    assert parser.parse_args(base).write_mode == "batch"
    assert parser.parse_args([*base, "--mode", "row"]).write_mode == "row"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--mode", "fast"])


def test_results_print_rows_per_second_and_mean_write_time_per_row() -> None:
    result = ExportResult("t", "postgres", "snapshot", 3, None, 400, 0, 2.0, rows_written=400, write_seconds=0.5, write_mode="row")
    assert result.describe().endswith("staged 400 rows: 800 rows/s, 1.250 ms per row (row mode)")
    other = ExportResult("u", "postgres", "changes", 4, 2, 100, 0, 1.0, rows_written=100, write_seconds=0.5, write_mode="row")
    skipped = ExportResult("v", "mysql", "skipped", 4, None, 0, 0, 0.1)
    assert write_summary([result, other, skipped]) == ["postgres: staged 500 rows in 1.00s: 500 rows/s, 2.000 ms per row (row mode)"]
