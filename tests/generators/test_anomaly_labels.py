"""The manifest's sensor anomalies (kind `anomaly`, fate keep) match the values the landing
files really hold: a spike's reading has the recorded value, a stuck sensor repeats its value
over [start, end], a drift grows; and recording them changes no landed byte."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from medallion.contracts.defects import DefectKind, Fate
from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import AnomalyEntry, read_manifests
from tests.support.generator import audit, generate, load

SENSORS = ("t24_lpc_outlet_k", "t50_lpt_outlet_k", "p30_hpc_psia", "ps30_psia", "phi_ratio", "vibration_mm_s")


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _records(root: Path) -> dict[str, dict[str, Any]]:
    """Every landed reading silver keeps, by key: lines the ledger marks for quarantine (or as
    duplicates) left out, read here from the files themselves."""
    refused = {(d.file, d.line) for m in read_manifests(DataRoot(root), "readings") for d in m.defects
               if DefectKind(d.kind).fate(d.change) != Fate.KEEP}
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "landing" / "readings").glob("*.jsonl")):
        relative = path.relative_to(root).as_posix()
        for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
            if (relative, number) in refused:
                continue
            record = json.loads(raw)
            out[record["reading_id"]] = record
    return out


@pytest.fixture(scope="module")
def turbofan(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("turbofan")
    generate(root, "turbofan", 11, 30)
    anomalies = [a for m in read_manifests(DataRoot(root), "readings") for a in m.anomalies]
    return root, anomalies, _records(root)


def test_every_subtype_is_recorded_as_a_keep_fate_anomaly(turbofan: tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]) -> None:
    root, anomalies, _ = turbofan
    subtypes = {a.subtype for a in anomalies}
    assert subtypes == {"spike", "stuck", "drift"}
    assert {a.kind for a in anomalies} == {"anomaly"} and {a.fate for a in anomalies} == {"keep"}
    assert {a.sensor for a in anomalies} <= set(SENSORS)
    assert all(_instant(a.start) <= _instant(a.end) for a in anomalies)
    # Engines have no faulty sensors: their manifests carry no anomalies list at all.
    engines = (root / "manifests" / "engines" / "b000000.json").read_text()
    assert '"anomalies"' not in engines


def test_spikes_name_their_reading_and_its_value(turbofan: tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]) -> None:
    _, anomalies, records = turbofan
    spikes = [a for a in anomalies if a.subtype == "spike"]
    assert len(spikes) > 20
    for spike in spikes:
        assert spike.key is not None and spike.start == spike.end and spike.readings == 1
        record = records[spike.key]
        assert record["engine_id"] == spike.engine
        assert record[spike.sensor] == spike.value
        assert spike.magnitude is not None and spike.magnitude != 0
    # The period is the reading's event time (only a late or out-of-order line moves it).
    on_time = sum(_instant(records[s.key]["recorded_at"]) == _instant(s.start) for s in spikes if s.key)
    assert on_time >= 0.95 * len(spikes)


def test_a_stuck_sensor_is_constant_over_its_period(turbofan: tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]) -> None:
    root, anomalies, records = turbofan
    spiked = {(a.key, a.sensor) for a in anomalies if a.subtype == "spike"}
    by_engine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records.values():
        if isinstance(record.get("engine_id"), str) and isinstance(record.get("recorded_at"), str):
            by_engine[record["engine_id"]].append(record)
    stuck = [a for a in anomalies if a.subtype == "stuck"]
    moved = {d.key for m in read_manifests(DataRoot(root), "readings") for d in m.defects if d.kind in ("late", "out_of_order")}
    assert len(stuck) > 10
    for entry in stuck:
        start, end = _instant(entry.start), _instant(entry.end)
        inside = [r for r in by_engine[entry.engine]
                  if start <= _instant(r["recorded_at"]) <= end and (r["reading_id"], entry.sensor) not in spiked
                  and r["reading_id"] not in moved]  # labelled by generated time: a late line moved in is not
        assert inside, entry
        values = {r[entry.sensor] for r in inside if isinstance(r[entry.sensor], float)}
        assert values == {entry.value}, (entry.id, values)
        assert entry.readings >= len(inside)
    # Outside a stuck day the sensor is noisy: a day with a frozen sensor stands out.
    stuck_days = {(a.engine, a.sensor, a.start[:10]) for a in stuck}
    checked = 0
    for engine, sensor, day in stuck_days:
        before = [r[sensor] for r in by_engine[engine] if r["recorded_at"][:10] < day and isinstance(r[sensor], float)]
        previous = max((r["recorded_at"][:10] for r in by_engine[engine] if r["recorded_at"][:10] < day), default=None)
        if len(before) >= 12 and (engine, sensor, previous) not in stuck_days:
            assert len(set(before[-12:])) > 1, (engine, sensor, day)
            checked += 1
    assert checked > 0


def test_drift_grows_with_time_in_service(turbofan: tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]) -> None:
    _, anomalies, _ = turbofan
    pieces: dict[str, list[AnomalyEntry]] = defaultdict(list)
    for entry in anomalies:
        if entry.subtype == "drift":
            pieces[entry.id].append(entry)
    assert pieces
    for entries in pieces.values():
        magnitudes = [e.magnitude for e in sorted(entries, key=lambda e: e.end)]
        assert all(m is not None and m > 0 for m in magnitudes)
        assert magnitudes == sorted(magnitudes)  # type: ignore[type-var]
        assert {e.sensor for e in entries} <= {"t24_lpc_outlet_k", "ps30_psia"}  # the sensors the scenario lets drift


def test_anomalies_leave_the_ledger_exact(turbofan: tuple[Path, list[AnomalyEntry], dict[str, dict[str, Any]]]) -> None:
    root, anomalies, _ = turbofan
    found = audit(root, load("turbofan"))
    assert found.orphans_in_clean == 0 and found.clean >= 0.85 * found.lines
    # Only readings silver keeps are labelled: no spike names a key the ledger quarantines.
    quarantined = {d.key for m in read_manifests(DataRoot(root), "readings") for d in m.defects if d.kind != "duplicate"
                   and d.kind not in ("late", "out_of_order") and not (d.kind == "schema_drift" and d.change == "add")}
    assert not {a.key for a in anomalies if a.key} & quarantined
