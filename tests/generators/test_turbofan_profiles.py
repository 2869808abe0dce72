"""Turbofan's profiles have the sensor simulator's fleets and rates, measured in what lands;
`--set` changes a run's output as it says."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from medallion.contracts.scenario_loader import load_scenario
from tests.support.generator import generate

ENGINE_ID = re.compile(r"eng-\d{4}\Z")
# profile: (engines, readings per engine per simulated second)
PROFILES = {"development": (3, 2), "demo": (2, 3), "production": (10, 1), "testing": (2, 5)}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def readings_by_engine(data: Path, batch: int) -> dict[str, list[float]]:
    """Epoch seconds of each engine's distinct reading instants within one batch's interval
    (lines that parse as readings; a late or out-of-order defect's instant lies outside)."""
    manifest = json.loads((data / "manifests" / "readings" / f"b{batch:06d}.json").read_text())
    start, end = _epoch(manifest["interval_start"]), _epoch(manifest["interval_end"])
    times: dict[str, set[float]] = defaultdict(set)
    for path in sorted((data / "landing" / "readings").glob(f"readings-b{batch:06d}-p*.jsonl")):
        for raw in path.read_bytes().splitlines():
            try:
                row = json.loads(raw)
                engine, at = row["engine_id"], _epoch(row["recorded_at"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a defective line (the ledger has it)
            if isinstance(engine, str) and ENGINE_ID.match(engine) and start <= at < end:
                times[engine].add(at)
    return {engine: sorted(found) for engine, found in times.items()}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_fleet_and_reading_rate(tmp_path: Path, profile: str) -> None:
    engines, hertz = PROFILES[profile]
    scenario = load_scenario("turbofan", profile=profile)
    assert scenario.entities["engines"].baseline == engines
    arrival = scenario.entities["readings"].arrival
    assert arrival is not None and arrival.distribution == "fixed"
    assert arrival.rate / arrival.every.total_seconds() == hertz

    generate(tmp_path, "turbofan", 5, 2, profile, "--speed", "0")
    first = json.loads((tmp_path / "manifests" / "engines" / "b000000.json").read_text())
    assert first["generated_rows"] >= engines  # the fleet, and any replacement due at the start
    # Batch 1: every clean engine of the fleet is in service for the whole interval (an engine
    # whose own row carries a defect is never referenced: its readings are not written).
    by_engine = readings_by_engine(tmp_path, 1)
    assert len(by_engine) >= min(engines, first["clean_records"]) >= 1
    interval = scenario.clock.interval.total_seconds()
    expected = hertz * interval  # one reading per 1/Hz seconds, the interval through
    counts = [len(times) for times in by_engine.values()]
    # Some lines carry a defect that hides their time or engine (testing: 3% of each kind).
    assert 0.85 * expected <= max(counts) <= expected
    gaps = np.concatenate([np.diff(times) for times in by_engine.values() if len(times) > 1])
    assert np.median(gaps) == pytest.approx(1 / hertz, abs=0.0015)  # evenly spaced, to the millisecond


def test_set_changes_the_reading_rate_of_a_run(tmp_path: Path) -> None:
    generate(tmp_path / "two", "turbofan", 5, 2, "development", "--speed", "0")
    generate(tmp_path / "one", "turbofan", 5, 2, "development", "--speed", "0", "--set", "entities.readings.arrival.rate=60")
    two = readings_by_engine(tmp_path / "two", 1)
    one = readings_by_engine(tmp_path / "one", 1)
    assert 0.98 * 2 * 900 <= max(len(t) for t in two.values()) <= 2 * 900
    assert 0.98 * 900 <= max(len(t) for t in one.values()) <= 900
    assert set(one) == set(two)  # the fleet is the same: only the rate was set
    run = json.loads((tmp_path / "one" / "manifests" / "run.json").read_text())
    assert run["config_sha256"] == load_scenario("turbofan", "development", settings=["entities.readings.arrival.rate=60"]).sha256()
