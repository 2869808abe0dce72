"""Quality and progress rows, and the threshold alert (pure Python parts of silver and metrics; no JVM)."""

from __future__ import annotations

from medallion.cli import main
from medallion.contracts.defects import SilverCheck
from medallion.contracts.errors import QualityAlert
from spark_jobs.metrics import ProgressRow
from spark_jobs.rules import Rule
from spark_jobs.schemas import METRICS_SCHEMA, QUALITY_SCHEMA
from spark_jobs.silver import QualityAlerts, QualityRow, quality_rows

RULES = [Rule.derived(SilverCheck.MALFORMED_JSON), Rule.derived(SilverCheck.RANGE, "speed"),
         Rule("slow_enough", None, "warn", sql="speed < 100")]


def counts(bronze: int, quarantined: int, dups: int) -> dict[str, int]:
    return {"_batch_id": 4, "bronze_rows": bronze, "parsed_rows": bronze - 1, "clean_rows": 0,
            "quarantine_rows": quarantined, "dropped_rows": 0, "valid_rows": bronze - quarantined,
            "duplicate_rows": dups, "silver_rows": bronze - quarantined - dups, "schema_ok_rows": bronze - quarantined,
            "f_0": 1, "f_1": quarantined - 1, "f_2": 2}


def test_quality_rows_balance_and_score() -> None:
    rows = quality_rows("events", 9, [counts(100, 10, 3)], RULES)
    by_rule = {row.rule: row for row in rows}
    assert set(by_rule) == {"malformed_json", "speed_range", "slow_enough", "duplicate", "_batch"}
    assert {(row.entity, row.batch_id, row.micro_batch_id) for row in rows} == {("events", 4, 9)}
    summary = by_rule["_batch"]
    assert summary.bronze_rows == summary.silver_rows + summary.quarantine_rows + summary.duplicate_rows + summary.dropped_rows == 100
    assert (summary.checked, summary.passed, summary.failed) == (100, 90, 10)
    assert summary.score == 0.9
    checks = {rule: (row.checked, row.passed, row.failed) for rule, row in by_rule.items()}
    assert checks["malformed_json"] == (100, 99, 1)  # checked on every line
    assert checks["speed_range"] == (99, 90, 9)  # checked on parsed lines
    assert checks["slow_enough"] == (90, 88, 2)  # expectations: rows passing the schema rules
    assert checks["duplicate"] == (90, 87, 3)
    assert all(row.score is None for row in rows if row.rule != "_batch")


def test_quality_row_is_the_quality_table_field_for_field() -> None:
    # spark.createDataFrame(rows, QUALITY_SCHEMA) reads a row by position.
    assert QualityRow._fields == tuple(QUALITY_SCHEMA.fieldNames())


def test_alert_only_below_threshold(capsys) -> None:
    import logging

    from medallion.contracts.logs import ROOT, configure_logging

    logger = logging.getLogger(ROOT)
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    configure_logging("text")  # as the CLI does: warnings of the `medallion` loggers on stderr
    try:
        alerts = QualityAlerts(threshold=0.9)
        alerts.check("events", 1, 0.95)
        alerts.check("events", 2, 0.89)
        assert alerts.breaches == [("events", 2, 0.89)]
        (line,) = capsys.readouterr().err.splitlines()
        assert line.endswith("WARNING quality ALERT events batch 2: score 0.8900 < threshold 0.9000")
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def test_quality_alert_exit_code_is_distinct() -> None:
    assert QualityAlert.exit_code == 6
    assert main(["pipeline", "--scenario", "driving", "--data", "/nonexistent", "--layers", "platinum"]) == 2


def test_progress_row_is_the_metrics_table_field_for_field() -> None:
    assert ProgressRow._fields == tuple(METRICS_SCHEMA.fieldNames())
