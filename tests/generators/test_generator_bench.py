"""The benchmark functions `medallion bench` calls: they measure real work and report ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generators import bench
from medallion.contracts.scenario_loader import load_scenario


def test_encode_only_counts_events() -> None:
    events, cpu = bench.encode_only(1, profile="small")
    assert events > 0 and cpu > 0


def test_generator_run_counts_what_it_wrote(tmp_path: Path) -> None:
    run = bench._generate(tmp_path / "gen", 2, profile="small")
    written = sum(p.stat().st_size for p in run.files)
    assert run.bytes == written and run.events > 0 and run.lines >= run.events
    assert run.cpu > 0 and run.wall > 0
    # Under way, it lands the second batch's bytes between the first commit and the second.
    assert run.steady > 0


def test_faker_baseline_writes_the_same_record_shape(tmp_path: Path) -> None:
    records, seconds, cpu = bench.faker_baseline(tmp_path / "faker.jsonl", 200)
    assert records == 200 and seconds > 0 and cpu > 0
    rows = [json.loads(line) for line in (tmp_path / "faker.jsonl").read_text().splitlines()]
    assert len(rows) == 200
    assert list(rows[0]) == ["event_id", "driver_id", "event_type", "event_time", "speed_kmh", "latitude", "longitude"]
    assert {r["event_type"] for r in rows} == {"start_driving", "stopped_driving", "delivered"}
    assert all(r["event_time"].startswith("2026-01-05T06:") and r["event_time"].endswith("Z") for r in rows)


def test_copy_baseline_copies_every_byte(tmp_path: Path) -> None:
    run = bench._generate(tmp_path / "gen", 1, profile="small")
    copied, seconds = bench.copy_baseline(run.files, tmp_path / "copy")
    assert copied == run.bytes and seconds > 0
    assert sorted(p.read_bytes() for p in (tmp_path / "copy").iterdir()) == sorted(p.read_bytes() for p in run.files)


def test_floor_writes_every_byte_and_counts_every_event(tmp_path: Path) -> None:
    run = bench._generate(tmp_path / "gen", 1, profile="small")
    rate = bench.floor_per_cpu(run.files, run.events, 1, tmp_path / "floor")
    assert rate > 0
    written = sorted(p.read_bytes() for p in (tmp_path / "floor").iterdir())
    assert written == sorted(p.read_bytes() for p in run.files)


def test_declared_draws_follow_the_scenario() -> None:
    scenario = load_scenario("driving", profile="scaling")
    rng = np.random.default_rng(1)
    drawn = bench._declared_draws(rng, scenario.entities["driver_events"], 100, 20_000, 900_000)
    # The sampled fields of driver_events (ids and event_time come from sequences and the arrivals).
    assert set(drawn) == {"unit", "instant", "event_type", "speed_kmh", "latitude", "longitude", "app_version"}
    assert drawn["latitude"].size == 20_000 and 52.30 <= drawn["latitude"].min() <= drawn["latitude"].max() <= 52.45
    assert abs(drawn["speed_kmh"].mean() - 52) < 1 and abs(drawn["speed_kmh"].std() - 18) < 1
    assert np.all(np.diff(drawn["instant"]) >= 0) and drawn["instant"].max() < 900_000
    assert set(np.unique(drawn["event_type"])) == {0, 1, 2}
    assert drawn["unit"].max() < 100


# Run in a fresh interpreter: after a long test session the allocator may serve 8 MB from pages
# the process touched before (glibc raises its mmap threshold once large blocks are freed), and
# then no page faults at all although every byte was written.
_WARM_MEMORY_PROBE = """
import json, resource, tracemalloc
from generators import bench
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
tracemalloc.start()
seconds = bench.warm_memory(8)
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps({"seconds": seconds, "current": current, "peak": peak, "faults": faults}))
"""


def test_warm_memory_touches_what_it_is_asked_for() -> None:
    probe = subprocess.run([sys.executable, "-c", _WARM_MEMORY_PROBE], capture_output=True, text=True, check=True)
    measured = json.loads(probe.stdout)
    assert measured["seconds"] > 0
    assert measured["peak"] >= 8 << 20 and measured["current"] < 1 << 20  # held, then given back
    # Written, not just reserved: an untouched 8 MB allocation faults in no page at all. At least
    # one fault per 2 MB, as the kernel may back it with huge pages (about 500 here with 4 KB ones).
    assert measured["faults"] >= 4, measured


@pytest.mark.slow
def test_run_benchmarks_quick_reports_every_figure() -> None:
    results = bench.run_benchmarks(quick=True)
    assert [r["name"] for r in results] == [
        "generator: driving events per CPU-second, in memory (one core)",
        "generator: driving events per CPU-second, written durably (one core)",
        "generator vs row-by-row Faker + json.dumps (per core)",
        "generator vs copying the same bytes on the same disk",
        "generator floor (the same draws, bytes hashed and written) vs Faker",
        "generator vs its floor (per core)",
        "generator memory over many batches",
    ]
    for result in results:
        assert {"name", "value", "baseline", "ratio", "goal", "ok", "unit", "notes"} <= set(result)
        assert result["value"] > 0 and result["ratio"] > 0
    # A stationary fleet must not grow in memory from one day to the next.
    assert results[6]["ok"], results[6]
    # The floor does less than the generator, so it is faster.
    assert results[5]["ratio"] < 1.0, results[5]
