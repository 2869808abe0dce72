"""Driving's emulated mode: combined profiles, emulated cadences (pace and batch size), the
health answer's generation mode and emulated configuration, `--entities` and `--start now`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from generators.runner import Runner, RunOptions
from medallion.cli import main
from medallion.contracts.errors import ConfigError
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.local.ports import free_port
from tests.support.control_api import served_environment, wait_for
from tests.support.generator import generate, tree_bytes

# The source system's emulated presets: real seconds per batch, events per batch.
PRESETS = {"cadence_5s": (5, (3, 10)), "cadence_10s": (10, (5, 20)), "cadence_30s": (30, (10, 50))}


def generated_rows(data: Path, entity: str) -> list[int]:
    manifests = sorted((data / "manifests" / entity).glob("b*.json"))
    return [json.loads(path.read_text())["generated_rows"] for path in manifests]


def test_profiles_combine_left_to_right_and_a_later_one_wins() -> None:
    small_then_cadence = load_scenario("driving", profile="small,cadence_5s")
    assert small_then_cadence.profile == "small,cadence_5s"
    assert small_then_cadence.clock.speed == 180  # from cadence_5s
    spawn = small_then_cadence.entities["drivers"].spawn
    assert spawn is not None and spawn.count == 5  # from small, which cadence_5s leaves alone
    assert small_then_cadence.entities["companies"].baseline == 0  # both set it: cadence_5s came later
    cadence_then_small = load_scenario("driving", profile="cadence_5s,small")
    assert cadence_then_small.entities["companies"].baseline == 5  # small came later
    assert cadence_then_small.clock.speed == 180
    # One profile alone is what it always was (and so is its hash).
    assert load_scenario("driving", profile="small").profile == "small"
    assert load_scenario("driving", profile="small").sha256() != small_then_cadence.sha256()


@pytest.mark.parametrize("profile", ["small,fast", "small,", "nope"])
def test_an_unknown_profile_is_an_error_listing_the_known_ones(tmp_path: Path, profile: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--scenario", "driving", "--profile", profile, "--seed", "1", "--data", str(tmp_path / "d"), "--batches", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--profile" in err
    if profile != "small,":
        assert "base, cadence_10s, cadence_30s, cadence_5s, scaling, small" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("profile", sorted(PRESETS))
def test_emulated_cadences_set_the_pace_and_the_batch_size(tmp_path: Path, profile: str) -> None:
    seconds, (low, high) = PRESETS[profile]
    scenario = load_scenario("driving", profile=profile)
    assert scenario.clock.interval.total_seconds() / scenario.clock.speed == seconds
    generate(tmp_path / "a", "driving", 11, 40, profile, "--speed", "0")
    companies = generated_rows(tmp_path / "a", "companies")
    events = generated_rows(tmp_path / "a", "driver_events")
    assert companies == [10] * 40  # 10 companies per batch, the first included
    assert all(low <= n <= high for n in events), events
    assert min(events) <= low + 1 and max(events) >= high - 1  # the whole range, uniformly
    # Seeded: the same seed gives the same bytes.
    generate(tmp_path / "b", "driving", 11, 40, profile, "--speed", "0")
    assert tree_bytes(tmp_path / "a" / "landing") == tree_bytes(tmp_path / "b" / "landing")


def test_a_size_preset_with_a_cadence_keeps_its_drivers(tmp_path: Path) -> None:
    generate(tmp_path, "driving", 3, 4, "small,cadence_10s", "--speed", "0")
    assert generated_rows(tmp_path, "drivers") == [50] * 4  # 10 companies x 5 drivers (small)
    assert all(5 <= n <= 20 for n in generated_rows(tmp_path, "driver_events"))
    run = json.loads((tmp_path / "manifests" / "run.json").read_text())
    assert run["profile"] == "small,cadence_10s"


def test_health_without_a_server_says_fast_or_real_time(tmp_path: Path) -> None:
    for speed, mode in ((0.0, "fast"), (1.0, "real_time"), (90.0, "emulated")):
        runner = Runner(load_scenario("driving"), 1, DataRoot(tmp_path / str(speed)), RunOptions(batches=1, speed=speed))
        health = runner.health()
        assert health["generation_mode"] == mode
        assert (health["emulated_config"] is None) == (mode != "emulated")


def test_served_health_reports_the_emulated_mode_and_configuration(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = served_environment(MEDALLION_CONTROL_TOKEN="t" * 24)
    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small,cadence_10s",
         "--seed", "5", "--data", str(data), "--serve", f"127.0.0.1:{port}", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_for(lambda: client.get("/api/health").status_code == 200)
            health = client.get("/api/health").json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert health["generation_mode"] == "emulated"
    config = health["emulated_config"]
    assert config["batch_interval_seconds"] == 10
    assert config["simulated_interval_seconds"] == 900
    assert config["entities"]["companies"]["rows_per_batch_range"] == [10, 10]
    assert config["entities"]["driver_events"]["rows_per_batch_range"] == [5, 20]
    assert config["entities"]["drivers"]["spawn"] == {"parent": "companies", "count": 5}
    assert health["cadence"]["real_seconds_per_batch"] == 10


def test_entities_writes_only_those_with_the_bytes_of_a_full_run(tmp_path: Path) -> None:
    generate(tmp_path / "part", "driving", 7, 3, None, "--entities", "companies,drivers")
    generate(tmp_path / "full", "driving", 7, 3)
    part = tree_bytes(tmp_path / "part" / "landing")
    full = tree_bytes(tmp_path / "full" / "landing")
    assert part and {Path(p).parts[0] for p in part} == {"companies", "drivers"}
    assert part == {p: b for p, b in full.items() if Path(p).parts[0] in ("companies", "drivers")}
    assert not (tmp_path / "part" / "manifests" / "driver_events").exists()
    # The same data root completes to a full run later (the missing entity is written then).
    generate(tmp_path / "part", "driving", 7, 3)
    assert tree_bytes(tmp_path / "part" / "landing") == full


def test_entities_must_be_entities_of_the_scenario(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'trucks': not an entity of driving; it has companies, drivers, driver_events"):
        Runner(load_scenario("driving"), 1, DataRoot(tmp_path), RunOptions(batches=1, entities=("companies", "trucks")))
    code = main(["generate", "--scenario", "driving", "--seed", "1", "--data", str(tmp_path / "d"), "--batches", "1", "--entities", "trucks"])
    assert code == 2 and not (tmp_path / "d").exists()


def test_start_now_starts_the_simulated_clock_at_the_current_instant(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    generate(tmp_path, "driving", 7, 1, "small", "--start", "now")
    after = datetime.now(UTC)
    run = json.loads((tmp_path / "manifests" / "run.json").read_text())
    started = datetime.fromisoformat(run["clock"]["start"].replace("Z", "+00:00"))
    assert before <= started <= after
    manifest = json.loads((tmp_path / "manifests" / "companies" / "b000000.json").read_text())
    assert manifest["interval_start"] == run["clock"]["start"]
