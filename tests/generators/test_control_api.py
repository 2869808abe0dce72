"""The HTTP control API end to end: a real `medallion generate --serve` process, real HTTP.

The generator makes its own token (no MEDALLION_CONTROL_TOKEN) and writes it to
DIR/manifests/.control-token; the client reads it from there, as a user would.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medallion.local.ports import free_port
from tests.support.control_api import read_token, served_client, start_served, wait_for


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    port = free_port()
    data = tmp_path / "data"
    process = start_served(data, port)
    with served_client(data, port, process, "driver_events") as client:
        yield client, process, data


def test_health_reports_status_cadence_and_entities(served: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, _, _ = served
    health = client.get("/api/health").json()
    assert health["status"] == "running"
    assert health["mode"] == "continuous"
    assert health["uptime_seconds"] > 0
    assert health["cadence"]["interval_seconds"] == 900
    assert health["cadence"]["real_seconds_per_batch"] == pytest.approx(0.1)
    events = health["entities"]["driver_events"]
    assert events["last_batch"] is not None and events["last_batch_time"].endswith("Z")
    assert events["idle_seconds"] >= 0
    assert set(health["entities"]) == {"companies", "drivers", "driver_events"}


def test_pause_clean_resume_cycle(served: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, _, data = served
    refused = client.post("/api/clean")
    assert refused.status_code == 409
    assert any(data.glob("landing/*/*.jsonl"))

    paused = client.post("/api/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    before = client.get("/api/health").json()
    time.sleep(0.5)  # five batch periods: nothing may be written while paused
    after = client.get("/api/health").json()
    assert after["status"] == "paused"
    assert after["entities"]["driver_events"]["batches"] == before["entities"]["driver_events"]["batches"]

    cleaned = client.post("/api/clean")
    assert cleaned.status_code == 200
    assert cleaned.json()["removed_files"] > 0
    assert not list(data.glob("landing/*/*.jsonl")) and not list(data.glob("manifests/*/b*.json"))

    resumed = client.post("/api/resume").json()
    assert resumed["status"] == "running"
    assert resumed["baseline_regenerated"] is True
    assert resumed["lines"]["companies"] > 0 and resumed["lines"]["drivers"] > 0
    assert (data / "landing/companies/companies-b000000-p00.jsonl").is_file()
    wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 2)

    again = client.post("/api/pause")
    assert again.json()["status"] == "paused"
    resumed_plain = client.post("/api/resume").json()
    assert resumed_plain["baseline_regenerated"] is False


def test_batches_after_clean_and_resume_keep_the_cadence(tmp_path: Path) -> None:
    # Once, batches 1 and 2 followed the regenerated baseline within 0.25 s instead of one
    # cadence apart: every batch counted as the baseline until batch 0 reached the disk.
    cadence = 1.5  # 15-minute batches at 600x
    port = free_port()
    data = tmp_path / "data"
    process = start_served(data, port, speed=900 / cadence)
    try:
        token = read_token(data, process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
            wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 2)
            assert client.post("/api/pause").json()["status"] == "paused"
            assert client.post("/api/clean").json()["next_batch"] == 0
            resumed = client.post("/api/resume").json()
            assert resumed["baseline_regenerated"] is True
            resumed_at = time.time()
            wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    written = [(data / f"manifests/driver_events/b{b:06d}.json").stat().st_mtime for b in range(3)]
    assert written[0] - resumed_at < cadence  # the baseline at once
    gaps = [later - earlier for earlier, later in itertools.pairwise(written)]
    # Each later batch one cadence after the one before: not at once (all batches once counted
    # as the baseline), nor two cadences (re-anchored once batch 0 was on disk).
    assert all(0.8 * cadence <= gap <= 1.5 * cadence for gap in gaps), gaps


def test_logs_page_with_since_limit_and_level(served: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, _, _ = served
    first = client.get("/api/logs", params={"limit": 2}).json()
    assert len(first["entries"]) == 2
    assert first["nextSince"] == first["entries"][-1]["seq"]
    following = client.get("/api/logs", params={"limit": 3, "since": first["nextSince"]}).json()
    assert following["entries"] and all(e["seq"] > first["nextSince"] for e in following["entries"])
    batch_entry = next(e for e in following["entries"] + first["entries"] if e["event"] == "batch")
    assert {"seq", "time", "level", "event", "message", "batch", "lines"} <= set(batch_entry)
    client.post("/api/pause")
    client.post("/api/clean")
    client.post("/api/resume")
    warnings = client.get("/api/logs", params={"level": "warning", "limit": 100}).json()
    assert [e["event"] for e in warnings["entries"]] == ["cleaned"]
    empty = client.get("/api/logs", params={"since": 10**9}).json()
    assert empty["entries"] == [] and empty["nextSince"] == 10**9
    assert client.get("/api/logs", params={"level": "loud"}).status_code == 422


def test_openapi_page_and_schema(served: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, _, _ = served
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/pause", "/api/resume", "/api/clean", "/api/logs"} <= set(paths)


def test_sigterm_stops_the_served_generator_cleanly(served: tuple[httpx.Client, subprocess.Popen[bytes], Path]) -> None:
    client, process, _ = served
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0
    with pytest.raises(httpx.TransportError):
        client.get("/api/health")
