"""`POST /api/anomalies` on a real `medallion generate --serve` process (turbofan), real HTTP:
token and body checks, and the injected anomalies land in the data and the manifests."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import AnomalyEntry, read_manifests
from medallion.local.ports import free_port
from tests.support.control_api import served_client, start_served, wait_for


@pytest.fixture
def turbofan(tmp_path: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    port = free_port()
    data = tmp_path / "data"
    # One-hour batches at 18,000x: one every 0.2 s.
    process = start_served(data, port, speed=18000, scenario="turbofan", profile=None, seed=3)
    with served_client(data, port, process, "readings", timeout=60) as client:
        yield client, process, data


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _readings(data: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((data / "landing" / "readings").glob("readings-*.jsonl")):  # not the `.` temporaries
        for raw in path.read_bytes().splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def _api_entries(data: Path) -> dict[str, list[AnomalyEntry]]:
    found: dict[str, list[AnomalyEntry]] = {}
    for manifest in read_manifests(DataRoot(data), "readings"):
        for entry in manifest.anomalies:
            if entry.source == "api":
                found.setdefault(entry.id, []).append(entry)
    return found


def test_anomaly_requests_need_the_token_and_a_valid_body(turbofan: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, _, data = turbofan
    engine = next(r["engine_id"] for r in _readings(data) if isinstance(r.get("engine_id"), str))
    body = {"subtype": "spike", "engine": engine, "sensor": "t24_lpc_outlet_k", "magnitude": 20.0}
    anonymous = httpx.post(f"{client.base_url}/api/anomalies", json=body)
    assert anonymous.status_code == 401
    refused = [
        ({**body, "subtype": "melt"}, "subtype"),
        ({**body, "duration_seconds": 60}, "one reading"),
        ({**body, "magnitude": 1e9}, "magnitude"),
        ({**body, "sensor": "firmware"}, "sensor"),
        ({**body, "sensor": "no_such_sensor"}, "no sensor 'no_such_sensor'"),
        ({**body, "engine": "eng-9999"}, "no engines 'eng-9999'"),
        ({"subtype": "stuck", "engine": engine, "sensor": "t24_lpc_outlet_k"}, "duration_seconds"),
        ({"subtype": "drift", "engine": engine, "sensor": "ps30_psia", "duration_seconds": 8 * 86400, "magnitude": 1}, "duration_seconds"),
        ({**body, "extra": 1}, "extra"),
    ]
    for payload, named in refused:
        answer = client.post("/api/anomalies", json=payload)
        assert answer.status_code == 422, (payload, answer.text)
        assert named in answer.text, (named, answer.text)
    assert _api_entries(data) == {}


def test_injected_anomalies_land_in_the_data_and_the_manifests(turbofan: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, process, data = turbofan
    engines = sorted({r["engine_id"] for r in _readings(data) if isinstance(r.get("engine_id"), str)})
    stuck_engine, spike_engine, drift_engine = engines[0], engines[1], engines[2]
    asked = [
        {"subtype": "stuck", "engine": stuck_engine, "sensor": "t24_lpc_outlet_k", "duration_seconds": 7200},
        {"subtype": "spike", "engine": spike_engine, "sensor": "p30_hpc_psia", "magnitude": -30.0},
        {"subtype": "drift", "engine": drift_engine, "sensor": "ps30_psia", "duration_seconds": 10800, "magnitude": 4.0},
    ]
    ids = []
    for payload in asked:
        answer = client.post("/api/anomalies", json=payload)
        assert answer.status_code == 200, answer.text
        assert answer.json()["entity"] == "readings"
        ids.append(answer.json()["id"])
        queued_at = answer.json()["next_batch"]
    # Five one-hour batches later every one has run its course.
    wait_for(lambda: client.get("/api/health").json()["next_batch"] > queued_at + 5, timeout=60)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    entries = _api_entries(data)
    readings = _readings(data)

    stuck = entries[ids[0]]
    assert {e.subtype for e in stuck} == {"stuck"} and {e.engine for e in stuck} == {stuck_engine}
    start, end = min(_instant(e.start) for e in stuck), max(_instant(e.end) for e in stuck)
    assert (end - start).total_seconds() <= 7200
    frozen = [r["t24_lpc_outlet_k"] for r in readings
              if r.get("engine_id") == stuck_engine and isinstance(r.get("recorded_at"), str)
              and start <= _instant(r["recorded_at"]) <= end and isinstance(r.get("t24_lpc_outlet_k"), float)]
    assert len(frozen) >= 12 and len(set(frozen)) == 1 and frozen[0] == stuck[0].value

    (spike,) = entries[ids[1]]
    assert spike.subtype == "spike" and spike.engine == spike_engine and spike.key is not None
    record = next(r for r in readings if r.get("reading_id") == spike.key)
    assert record["p30_hpc_psia"] == spike.value and spike.magnitude == -30.0
    others = [r["p30_hpc_psia"] for r in readings if r.get("engine_id") == spike_engine and r.get("reading_id") != spike.key
              and isinstance(r.get("p30_hpc_psia"), float)]
    median = sorted(others)[len(others) // 2]
    assert abs(spike.value - median) > 20  # type: ignore[operator]

    drift = entries[ids[2]]
    magnitudes = [e.magnitude for e in sorted(drift, key=lambda e: e.end)]
    assert magnitudes == sorted(magnitudes) and 0 < magnitudes[-1] <= 4.0  # type: ignore[type-var,operator]
