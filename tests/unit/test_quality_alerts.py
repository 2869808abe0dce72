"""Quality rows and the threshold alert (pure Python parts of silver; no JVM)."""

from __future__ import annotations

from medallion.cli import main
from medallion.contracts.defects import SilverCheck
from medallion.contracts.errors import QualityAlert
from spark_jobs.rules import Rule
from spark_jobs.silver import QualityAlerts, quality_rows

RULES = [Rule.derived(SilverCheck.MALFORMED_JSON), Rule.derived(SilverCheck.RANGE, "speed"),
         Rule("slow_enough", None, "warn", sql="speed < 100")]


def counts(bronze: int, quarantined: int, dups: int) -> dict[str, int]:
    return {"_batch_id": 4, "bronze_rows": bronze, "parsed_rows": bronze - 1, "clean_rows": 0,
            "quarantine_rows": quarantined, "dropped_rows": 0, "valid_rows": bronze - quarantined,
            "duplicate_rows": dups, "silver_rows": bronze - quarantined - dups, "schema_ok_rows": bronze - quarantined,
            "f_0": 1, "f_1": quarantined - 1, "f_2": 2}


def test_quality_rows_balance_and_score() -> None:
    rows = quality_rows("events", 9, [counts(100, 10, 3)], RULES)
    by_rule = {row[3]: row for row in rows}
    assert set(by_rule) == {"malformed_json", "speed_range", "slow_enough", "duplicate", "_batch"}
    summary = by_rule["_batch"]
    bronze, silver, quarantine, dups, dropped, score = summary[9:15]
    assert bronze == silver + quarantine + dups + dropped == 100
    assert score == 0.9
    assert by_rule["malformed_json"][6:9] == (100, 99, 1)  # checked on every line
    assert by_rule["speed_range"][6:9] == (99, 90, 9)  # checked on parsed lines
    assert by_rule["slow_enough"][6:9] == (90, 88, 2)  # expectations: rows passing the schema rules
    assert by_rule["duplicate"][6:9] == (90, 87, 3)


def test_alert_only_below_threshold(capsys) -> None:
    alerts = QualityAlerts(threshold=0.9)
    alerts.check("events", 1, 0.95)
    alerts.check("events", 2, 0.89)
    assert alerts.breaches == [("events", 2, 0.89)]
    assert "ALERT events batch 2" in capsys.readouterr().out


def test_quality_alert_exit_code_is_distinct() -> None:
    assert QualityAlert.exit_code == 6
    assert main(["pipeline", "--scenario", "driving", "--data", "/nonexistent", "--layers", "platinum"]) == 2
