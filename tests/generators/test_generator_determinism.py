"""Same scenario + seed + options => byte-identical landing files and manifests."""

from __future__ import annotations

from pathlib import Path

from generators.engine import Engine
from generators.writer import LandingWriter, PipelinedWriter
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from tests.support.generator import generate, tree_bytes


def test_same_seed_gives_identical_bytes_including_manifests(tmp_path: Path) -> None:
    generate(tmp_path / "a", "driving", 7, 4)
    generate(tmp_path / "b", "driving", 7, 4)
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert any(p.startswith("landing/driver_events/") for p in first)
    assert any(p.startswith("manifests/driver_events/") for p in first)
    assert "manifests/run.json" in first
    assert first == second


def test_different_seed_gives_different_records(tmp_path: Path) -> None:
    generate(tmp_path / "a", "driving", 7, 1)
    generate(tmp_path / "b", "driving", 8, 1)
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert first.keys() == second.keys()
    name = "landing/driver_events/driver_events-b000000-p00.jsonl"
    assert first[name] != second[name]
    # Not just shifted: the event lines themselves differ.
    assert set(first[name].split(b"\n")) & set(second[name].split(b"\n")) <= {b""}


def test_wall_clock_never_reaches_content(tmp_path: Path) -> None:
    # Written at different moments with different pacing options, same bytes.
    generate(tmp_path / "a", "driving", 3, 2)
    generate(tmp_path / "b", "driving", 3, 2, None, "--speed", "0")
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_start_option_moves_the_clock_and_changes_the_config_hash(tmp_path: Path) -> None:
    generate(tmp_path / "a", "driving", 3, 1)
    generate(tmp_path / "b", "driving", 3, 1, None, "--start", "2026-03-02T08:00:00Z")
    a = (tmp_path / "a/manifests/driver_events/b000000.json").read_text()
    b = (tmp_path / "b/manifests/driver_events/b000000.json").read_text()
    assert '"interval_start":"2026-01-05T06:00:00Z"' in a
    assert '"interval_start":"2026-03-02T08:00:00Z"' in b
    assert b'"event_time":"2026-03-02T08:' in (tmp_path / "b/landing/driver_events/driver_events-b000000-p00.jsonl").read_bytes()


def test_identical_across_processes_with_different_hash_seeds(tmp_path: Path) -> None:
    # Python's string hashing is salted per process; nothing the generator writes may depend on it.
    import os
    import subprocess
    import sys

    for label, hash_seed in (("a", "1"), ("b", "2")):
        subprocess.run(
            [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "retail", "--seed", "3",
             "--data", str(tmp_path / label), "--batches", "3", "--quiet", "--no-fsync"],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
        )
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_pipelined_writing_matches_writing_one_batch_at_a_time(tmp_path: Path) -> None:
    # The pipelined writer assembles a batch's lines in its own thread while the engine is
    # already generating the next batches: nothing the engine does later may reach those bytes.
    scenario = load_scenario("traffic")  # defects of every kind, duplicates across batches
    serial = LandingWriter(DataRoot(tmp_path / "serial"), scenario, 5)
    serial.open()
    engine = Engine(scenario, 5)
    for _ in range(6):
        serial.write(engine.generate())
    serial.close()

    piped = LandingWriter(DataRoot(tmp_path / "piped"), scenario, 5)
    piped.open()
    engine = Engine(scenario, 5)
    written: list[int] = []
    pipeline = PipelinedWriter(piped, lambda batch, stats, seconds: written.append(stats.batch_id))
    for _ in range(6):
        pipeline.submit(engine.generate(), 0.0)
    pipeline.close()
    piped.close()

    assert written == list(range(6))
    serial_files, piped_files = tree_bytes(tmp_path / "serial"), tree_bytes(tmp_path / "piped")
    assert sum(p.startswith("landing/") for p in serial_files) >= 6
    assert serial_files == piped_files
