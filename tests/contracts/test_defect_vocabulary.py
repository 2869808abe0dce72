"""The defect vocabulary: one list of kinds, each with its fate and the silver rules that catch it."""

from __future__ import annotations

import pytest

from medallion.contracts.defects import ADDED_FIELD, DefectKind, Fate, SilverCheck
from medallion.contracts.scenario import Defects, DriftSpec
from spark_jobs.rules import EXPECTATION, rules_for
from tests.support.generator import load


def test_the_kinds_are_the_strings_of_the_yaml_and_the_ledger() -> None:
    assert [str(kind) for kind in DefectKind] == [
        "malformed_json", "null_required", "wrong_type", "out_of_range", "duplicate", "late", "out_of_order", "orphan_fk",
        "schema_drift",
    ]
    assert DefectKind("late") is DefectKind.LATE and f"{DefectKind.LATE}" == "late"


def test_every_kind_has_a_fate_and_the_quarantined_ones_a_rule() -> None:
    for kind in DefectKind:
        for change in (None, ADDED_FIELD, "rename", "retype"):
            assert kind.fate(change) in Fate
        # A kind silver quarantines is caught by a rule; one it keeps or dedupes by none.
        assert bool(kind.checks) == (kind.fate("rename") is Fate.QUARANTINE), kind
    assert {kind: kind.fate() for kind in DefectKind if kind.fate() is not Fate.QUARANTINE} == {
        DefectKind.DUPLICATE: Fate.DEDUPE, DefectKind.LATE: Fate.KEEP, DefectKind.OUT_OF_ORDER: Fate.KEEP,
    }
    assert DefectKind.SCHEMA_DRIFT.fate(ADDED_FIELD) is Fate.KEEP
    assert DefectKind.SCHEMA_DRIFT.fate("retype") is DefectKind.SCHEMA_DRIFT.fate("rename") is Fate.QUARANTINE
    assert {check: check.kind for check in SilverCheck if check.kind is DefectKind.MALFORMED_JSON} == dict.fromkeys(
        (SilverCheck.MALFORMED_JSON, SilverCheck.LINE_TOO_LONG, SilverCheck.TOO_DEEP), DefectKind.MALFORMED_JSON
    )


def test_rule_names_come_from_the_checks() -> None:
    assert SilverCheck.RANGE.rule_name("speed") == "speed_range"
    assert SilverCheck.SCHEMA_DRIFT.rule_name() == "schema_drift"
    with pytest.raises(ValueError, match="per field"):
        SilverCheck.FK.rule_name()


def test_the_scenario_rates_exactly_the_kinds_of_the_enum() -> None:
    rated = set(Defects.model_fields) - {"drift"}
    assert rated | {DefectKind.SCHEMA_DRIFT} == set(DefectKind)
    defects = Defects(late=0.1, drift=[DriftSpec(field="x", change="add", type="int", from_batch=0)])
    assert defects.rate(DefectKind.LATE) == 0.1 and defects.rate(DefectKind.SCHEMA_DRIFT) == 0.0


def test_silver_rules_carry_the_kind_of_their_check() -> None:
    scenario = load("driving")
    for entity in scenario.entities.values():
        for rule in rules_for(entity):
            if rule.check is None:
                assert rule.kind == EXPECTATION and rule.sql
            else:
                assert rule.kind == rule.check.kind and type(rule.kind) is str  # plain text for the tables
                assert rule.name == rule.check.rule_name(rule.field)
