"""Every built-in scenario (and its profiles) generates with defects on, ledger exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from medallion.cli import main
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario
from tests.support.generator import audit, generate, load

ALL_KINDS = {"malformed_json", "null_required", "wrong_type", "out_of_range", "duplicate", "late", "out_of_order", "orphan_fk", "schema_drift"}


@pytest.mark.parametrize(
    ("name", "profile", "batches"),
    [
        ("driving", None, 7),
        ("traffic", None, 8),
        ("retail", None, 10),
        ("infra", "small", 50),
        ("turbofan", None, 13),
    ],
)
def test_scenario_generates_every_defect_kind_with_an_exact_ledger(tmp_path: Path, name: str, profile: str | None, batches: int) -> None:
    generate(tmp_path, name, 21, batches, profile)
    found = audit(tmp_path, load(name, profile))
    assert found.orphans_in_clean == 0
    assert set(found.kinds) == ALL_KINDS, f"missing {ALL_KINDS - set(found.kinds)}"
    assert found.clean >= 0.85 * found.lines


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("driving", "small"),
        ("driving", "scaling"),
        ("driving", "cadence_5s"),
        ("traffic", "random"),
        ("retail", "small"),
        ("infra", "no_backfill"),
        ("turbofan", "development"),
        ("turbofan", "demo"),
        ("turbofan", "testing"),
    ],
)
def test_profiles_generate_and_audit(tmp_path: Path, name: str, profile: str) -> None:
    generate(tmp_path, name, 4, 1 if profile == "scaling" else 2, profile, "--speed", "0")
    found = audit(tmp_path, load(name, profile))
    assert found.lines > 0 and found.orphans_in_clean == 0


def test_every_shipped_scenario_and_profile_validates() -> None:
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    assert {"driving", "traffic", "retail", "infra", "turbofan"} <= set(names)
    for name in names:
        assert main(["schema", "--scenario", name]) == 0
        scenario = load_scenario(name)
        assert scenario.gold and scenario.export_tables
        for gold in scenario.gold:
            assert gold.source in scenario.facts


def test_driving_presets_have_the_documented_sizes() -> None:
    for profile, companies, drivers_each, lam in (("small", 5, 5, 2.0), (None, 100, 10, 3.5), ("scaling", 1000, 20, 5.0)):
        scenario = load_scenario("driving", profile=profile)
        assert scenario.entities["companies"].baseline == companies
        spawn = scenario.entities["drivers"].spawn
        assert spawn is not None and spawn.count == drivers_each
        arrival = scenario.entities["driver_events"].arrival
        assert arrival is not None and arrival.rate == lam
    for profile, seconds in (("cadence_5s", 5), ("cadence_10s", 10), ("cadence_30s", 30)):
        scenario = load_scenario("driving", profile=profile)
        assert scenario.clock.interval.total_seconds() / scenario.clock.speed == seconds
