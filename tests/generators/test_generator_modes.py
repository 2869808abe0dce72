"""Modes, restarts and signals: resume never repeats or skips a batch; SIGTERM ends cleanly."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from generators.writer import resume_point
from medallion.cli import main
from medallion.contracts.layout import DataRoot
from tests.support.generator import generate, load, tree_bytes


def spawn(*args: str) -> subprocess.Popen[bytes]:
    """`medallion generate ...` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "generate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def manifests(data: Path, entity: str = "driver_events") -> int:
    folder = data / "manifests" / entity
    return len(list(folder.glob("b*.json"))) if folder.is_dir() else 0


def assert_complete(data: Path) -> None:
    """Every manifest's files exist with their recorded hash; no temporary file is left."""
    for manifest_path in (data / "manifests").glob("*/b*.json"):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["files"]:
            content = (data / entry["path"]).read_bytes()
            assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    leftovers = [p for p in data.rglob(".*") if p.is_file() and p.name != ".lock"]
    assert not leftovers, leftovers


@pytest.mark.parametrize(
    ("name", "profile", "first", "total"),
    [("retail", None, 3, 6), ("turbofan", "development", 5, 9), ("traffic", None, 2, 5), ("infra", "small", 2, 4)],
)
def test_every_scenario_resumes_byte_identically(tmp_path: Path, name: str, profile: str | None, first: int, total: int) -> None:
    # Resuming replays counts only (facts) and regenerates the last batch in memory: the
    # sequences, units, spawned children and duplicates must come out exactly as without a stop.
    generate(tmp_path / "a", name, 17, first, profile)
    generate(tmp_path / "a", name, 17, total, profile)
    generate(tmp_path / "b", name, 17, total, profile)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_restart_continues_where_it_stopped(tmp_path: Path) -> None:
    generate(tmp_path / "a", "driving", 7, 3)
    generate(tmp_path / "a", "driving", 7, 6)
    generate(tmp_path / "a", "driving", 7, 6)  # nothing left to do: a no-op
    generate(tmp_path / "b", "driving", 7, 6)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_restart_after_a_crash_between_manifest_and_rename(tmp_path: Path) -> None:
    data = tmp_path / "a"
    generate(data, "driving", 7, 5)
    # Simulate a crash in batch 4 after its manifests were written: one file never renamed in,
    # another still under its temporary name.
    first = data / "landing/driver_events/driver_events-b000004-p00.jsonl"
    second = data / "landing/driver_events/driver_events-b000004-p01.jsonl"
    first.unlink()
    second.rename(second.with_name("." + second.name))
    assert resume_point(DataRoot(data), load("driving")) == 4
    generate(data, "driving", 7, 6)
    generate(tmp_path / "b", "driving", 7, 6)
    assert tree_bytes(data) == tree_bytes(tmp_path / "b")


def test_restart_after_sigkill_gives_the_same_bytes(tmp_path: Path) -> None:
    data = tmp_path / "a"
    process = spawn("--scenario", "driving", "--seed", "9", "--data", str(data), "--batches", "40", "--quiet")
    # A batch's manifests are written before its files are renamed in, so the 7th manifest is
    # what proves the first 6 batches complete (the kill may land between manifest and rename).
    wait_for(lambda: manifests(data) >= 7)
    process.kill()
    process.wait()
    done = resume_point(DataRoot(data), load("driving"))
    assert 6 <= done <= 40
    generate(data, "driving", 9, 40)
    generate(tmp_path / "b", "driving", 9, 40)
    assert tree_bytes(data) == tree_bytes(tmp_path / "b")
    assert_complete(data)


def test_sigterm_finishes_the_batch_in_hand_and_exits_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "a"
    # Large batches, continuous, as fast as possible: the signal lands mid-batch.
    process = spawn("--scenario", "driving", "--profile", "scaling", "--seed", "3", "--data", str(data), "--speed", "0", "--no-fsync")
    wait_for(lambda: manifests(data) >= 2, timeout=60)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert b"stopped by signal" in err
    written = manifests(data)
    assert resume_point(DataRoot(data), load("driving", "scaling")) == written
    assert_complete(data)


def test_duration_mode_reports_throughput(tmp_path: Path) -> None:
    report, err = _duration_report(tmp_path, "--quiet")
    assert report["runtime_seconds"] >= 1.5
    assert report["records"] > 0 and report["batches"] > 0
    assert report["records_per_second"] > 0
    assert report["busy_seconds"] <= report["runtime_seconds"]
    assert abs(report["records_per_second"] * report["busy_seconds"] / report["records"] - 1) < 0.01
    _assert_write_time_is_measured(report)
    assert "records/s" in err and "write and fsync calls" in err


@pytest.mark.parametrize("durability", ["fsync", "no-fsync"])
def test_mean_write_time_is_the_time_inside_write_and_fsync_calls(tmp_path: Path, durability: str) -> None:
    # It once was busy time / records: generating and hashing counted as "write time".
    extra = ("--no-fsync",) if durability == "no-fsync" else ()
    process = spawn("--scenario", "driving", "--profile", "small", "--seed", "3", "--data", str(tmp_path),
                    "--duration", "1.5", "--speed", "0", "--quiet", *extra)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    _assert_write_time_is_measured(report)
    if durability == "no-fsync":
        # Generating the records (in the run loop) is not write time: without fsync the calls
        # only copy into the page cache, a part of the busy time, not all of it. (With fsync
        # the tiny batches of `small` may spend most of the run waiting for the disk.)
        assert report["write_seconds"] < 0.95 * report["busy_seconds"]


def _assert_write_time_is_measured(report: dict[str, Any]) -> None:
    assert report["write_seconds"] > 0 and report["mean_write_us_per_record"] > 0
    assert report["write_seconds"] <= report["busy_seconds"]
    # The mean is the sum of the measured calls over the records written.
    mean_from_sum = report["write_seconds"] * 1e6 / report["records"]
    assert report["mean_write_us_per_record"] == pytest.approx(mean_from_sum, rel=1e-3, abs=2e-3)


def _duration_report(data: Path, *extra: str) -> tuple[dict[str, Any], str]:
    process = spawn("--scenario", "driving", "--seed", "3", "--data", str(data), "--duration", "1.5", "--no-fsync", *extra)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    return json.loads(out), err.decode()


def test_duration_at_full_speed_reports_the_runs_own_rate(tmp_path: Path) -> None:
    # The engine generates a batch while the last one is written: per-batch times overlap, so
    # the rate must come from the wall clock (it once summed them and showed half the rate).
    report, err = _duration_report(tmp_path, "--profile", "scaling", "--speed", "0")
    assert report["batches"] >= 2
    assert report["busy_seconds"] > 0.95 * report["runtime_seconds"]
    assert abs(report["records_per_second"] * report["runtime_seconds"] / report["records"] - 1) < 0.05
    assert "while busy" not in err


def test_duration_when_paced_reports_the_busy_time_apart(tmp_path: Path) -> None:
    # 15-minute batches at 9000x: one batch due every 0.1 s, each written in far less.
    report, err = _duration_report(tmp_path, "--profile", "small", "--speed", "9000")
    assert report["batches"] >= 10
    assert 0 < report["busy_seconds"] < 0.8 * report["runtime_seconds"]
    assert report["records_per_second"] > 2 * report["records"] / report["runtime_seconds"]
    assert "while busy" in err and f"{report['records']:,} records" in err


def test_speed_paces_batches_in_real_time(tmp_path: Path) -> None:
    # 15-minute batches at 9000x: one batch per 0.1 s; 6 batches take about 0.6 s.
    started = time.monotonic()
    generate(tmp_path, "driving", 3, 6, "small", "--speed", "9000")
    elapsed = time.monotonic() - started
    assert 0.55 < elapsed < 5


def test_a_data_root_of_another_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path, "driving", 7, 1)
    code = main(["generate", "--scenario", "driving", "--seed", "8", "--data", str(tmp_path), "--batches", "2", "--quiet"])
    assert code == 8
    assert "seed=7" in capsys.readouterr().err


def test_two_generators_cannot_share_a_data_root(tmp_path: Path) -> None:
    process = spawn("--scenario", "driving", "--seed", "3", "--data", str(tmp_path), "--speed", "1", "--quiet")
    try:
        wait_for(lambda: (tmp_path / "manifests" / ".lock").exists() and (tmp_path / "manifests" / "run.json").exists())
        second = spawn("--scenario", "driving", "--seed", "3", "--data", str(tmp_path), "--batches", "1", "--quiet")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 8
        assert b"another generator" in err
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    data = tmp_path / "a"
    seen: dict[str, int] = {}
    problems: list[str] = []
    done = threading.Event()

    def reader() -> None:
        # Read every visible landing file as soon as it appears, like Spark's file source.
        while not done.is_set():
            for path in sorted((data / "landing").glob("*/*.jsonl")) if (data / "landing").is_dir() else []:
                key = path.name
                if key in seen or key.startswith("."):
                    continue  # Spark's file source also skips `.` names (files being written)
                content = path.read_bytes()
                name = path.stem
                entity, batch = name.split("-b")[0], int(name.split("-b")[1][:6])
                manifest_path = data / "manifests" / entity / f"b{batch:06d}.json"
                if not manifest_path.exists():
                    problems.append(f"{key} visible before its manifest")
                    continue
                manifest = json.loads(manifest_path.read_text())
                entry = next(f for f in manifest["files"] if f["path"].endswith(key))
                if hashlib.sha256(content).hexdigest() != entry["sha256"]:
                    problems.append(f"{key} read partially ({len(content)} bytes)")
                seen[key] = len(content)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        # The generator in its own process, as in production; the reader polls meanwhile.
        process = spawn("--scenario", "driving", "--seed", "4", "--data", str(data), "--batches", "30", "--quiet", "--no-fsync")
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    finally:
        done.set()
        thread.join()
    assert not problems, problems[:3]
    assert len(seen) > 10
