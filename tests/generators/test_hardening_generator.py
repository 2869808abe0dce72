"""Hardening of `medallion generate`: paths out of the data root, numeric options, and failures
(unwritable --data, full disk, damaged manifests, year 9999) that must end in one clear line,
a non-zero exit, and nothing already written lost.

Every run is a real `medallion generate` process on real files (tmpfs mounts where a real full
or read-only file system is needed; they need root, as CI has).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from medallion.contracts.errors import MedallionError
from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import read_manifests
from tests.support.generator import tree_bytes
from tests.support.mounts import mount_tmpfs, unmount_all

BASE = ["--scenario", "driving", "--profile", "small", "--seed", "7", "--quiet", "--no-fsync"]


def generate(data: Path | str, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`medallion generate` in its own process (a run that never stops fails the test by timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "medallion.cli", "generate", *BASE, "--data", str(data), *extra],
        capture_output=True, text=True, timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """Assert a short error without traceback, with this exit code, naming every needle."""
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert err.startswith("medallion generate: error: ") and len(err.splitlines()) <= 3, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (dotfiles included), by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def foreign_folder(path: Path) -> Path:
    """A folder outside the data root holding a user's dotfiles and a file named like a temporary."""
    path.mkdir(parents=True)
    (path / ".env").write_text("API_KEY=do-not-delete\n")
    (path / ".netrc").write_text("machine example login me\n")
    (path / ".companies-b000000-p00.jsonl").write_text("not the generator's\n")
    (path / ".b000000.json.tmp").write_text("not the generator's either\n")
    return path


# --- 2. links leading out of the data root ---------------------------------------------------------


@pytest.mark.parametrize("link", ["landing", "landing/companies", "manifests", "manifests/driver_events"])
def test_a_folder_linked_out_of_the_data_root_is_refused_and_left_alone(tmp_path: Path, link: str) -> None:
    data = tmp_path / "data"
    outside = foreign_folder(tmp_path / "outside")
    before = snapshot(outside)
    (data / link).parent.mkdir(parents=True, exist_ok=True)
    (data / link).symlink_to(outside)
    result = generate(data, "--batches", "2")
    one_line_error(result, 2, str(data / link), "leads out of the data root")
    assert snapshot(outside) == before, "nothing written or deleted outside the data root"


@pytest.mark.parametrize("name", ["run.json", ".lock"])
def test_a_file_linked_out_of_the_data_root_is_refused_and_left_alone(tmp_path: Path, name: str) -> None:
    data = tmp_path / "data"
    victim = tmp_path / "victim.txt"
    victim.write_text("a user's file\n")
    (data / "manifests").mkdir(parents=True)
    (data / "manifests" / name).symlink_to(victim)
    one_line_error(generate(data, "--batches", "1"), 2, name, "leads out of the data root")
    assert victim.read_text() == "a user's file\n"


def test_start_up_removes_only_the_generators_own_temporaries(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert generate(data, "--batches", "2").returncode == 0
    own = [
        data / "landing/companies/.companies-b000002-p00.jsonl",
        data / "landing/driver_events/.driver_events-b000002-p01.jsonl",
        data / "manifests/drivers/.b000002.json.tmp",
        data / "manifests/drivers/.b000002.json.ab12cd_9",
        data / "manifests/.run.json.tmp",
    ]
    foreign = [
        data / "landing/companies/.env",
        data / "landing/companies/.drivers-b000002-p00.jsonl",  # another entity's name: not ours here
        data / "manifests/.netrc",
        data / "manifests/drivers/.b000002.json.swp",
        data / ".hidden/notes",
    ]
    for path in own + foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    assert generate(data, "--batches", "3").returncode == 0
    assert [p for p in own if p.exists()] == []
    assert [p for p in foreign if not p.is_file()] == []


def test_a_link_inside_the_data_root_is_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "elsewhere" / "companies").mkdir(parents=True)
    (data / "landing").mkdir()
    (data / "landing" / "companies").symlink_to(data / "elsewhere" / "companies")
    assert generate(data, "--batches", "2").returncode == 0
    assert (data / "elsewhere/companies/companies-b000000-p00.jsonl").is_file()


# --- 9. numeric options that never stop ----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--duration", "nan"), ("--duration", "inf"), ("--duration", "-1"), ("--duration", "0"),
     ("--speed", "nan"), ("--speed", "inf"), ("--speed", "-inf"), ("--speed", "-1")],
)
def test_nan_inf_and_negative_times_are_refused_before_anything_is_written(tmp_path: Path, option: str, value: str) -> None:
    data = tmp_path / "data"
    extra = [f"{option}={value}"] if option == "--duration" else [f"{option}={value}", "--batches", "2"]
    try:
        result = generate(data, *extra, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{option} {value} ran on instead of being refused")
    one_line_error(result, 2, option, value)
    assert not data.exists()


def test_a_tiny_speed_waits_instead_of_crashing(tmp_path: Path) -> None:
    # Batch 0 is due in ~1e303 s: the run waits (and stops on SIGTERM like any paced run)
    # instead of overflowing the wait's timeout.
    process = subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "generate", *BASE, "--data", str(tmp_path / "data"), "--speed", "1e-300"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / "manifests" / "run.json").is_file():
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(2.0)
        assert process.poll() is None, process.communicate()[1][-2000:]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0 and "Traceback" not in err, err[-2000:]


# --- 10. failures: one line, non-zero exit, nothing lost -----------------------------------------


def test_negative_seed(tmp_path: Path) -> None:
    one_line_error(generate(tmp_path / "data", "--batches", "1", "--seed", "-1"), 2, "--seed", "-1")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("kind", ["file", "below a file"])
def test_data_naming_a_file(tmp_path: Path, kind: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    data = afile if kind == "file" else afile / "data"
    one_line_error(generate(data, "--batches", "1"), 8, "--data", str(afile))
    assert afile.read_text() == "mine\n"


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on which tests mount tmpfs (unmounted afterwards)."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    unmount_all(point)


def test_data_on_a_read_only_file_system(mount_point: Path) -> None:
    mount_tmpfs(mount_point, "ro,size=1m")
    one_line_error(generate(mount_point / "data", "--batches", "1"), 8, "--data", "Read-only file system")


def test_full_disk_keeps_every_written_batch_and_resumes(tmp_path: Path, mount_point: Path) -> None:
    mount_tmpfs(mount_point, "size=300k")
    data = mount_point / "data"
    result = generate(data, "--batches", "40")
    err = one_line_error(result, 8, "No space left on device", "run the same command again")
    done = int(err.split("continue at batch ")[1].split()[0])
    assert 0 < done < 40
    # No temporary left behind, and every batch before `done` is whole.
    assert not [p for p in data.rglob(".*") if p.name != ".lock"]
    for entity in ("companies", "drivers", "driver_events"):
        manifests = read_manifests(DataRoot(data), entity)
        assert [m.batch_id for m in manifests][:done] == list(range(done))
    subprocess.run(["mount", "-o", "remount,size=20m", str(mount_point)], check=True)
    assert generate(data, "--batches", "40").returncode == 0
    fresh = tmp_path / "fresh"
    assert generate(fresh, "--batches", "40").returncode == 0
    assert tree_bytes(data) == tree_bytes(fresh), "the resumed run is byte-identical to an uninterrupted one"


def _damage_truncated(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _damage_types(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["files"] = "not a list"
    path.write_text(json.dumps(manifest))


def _damage_other_run(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["seed"] = 8
    path.write_text(json.dumps(manifest))


def _damage_other_scenario(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["scenario"] = "retail"
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", [_damage_truncated, _damage_types, _damage_other_run, _damage_other_scenario])
def test_a_damaged_last_manifest_is_named_and_nothing_is_touched(tmp_path: Path, damage: object) -> None:
    data = tmp_path / "data"
    assert generate(data, "--batches", "3").returncode == 0
    path = data / "manifests" / "drivers" / "b000002.json"
    damage(path)  # type: ignore[operator]
    before = tree_bytes(data)
    one_line_error(generate(data, "--batches", "5"), 8, str(path), "delete it")
    assert tree_bytes(data) == before
    # The message's fix works: delete it, and the batch is written again.
    path.unlink()
    assert generate(data, "--batches", "5").returncode == 0
    fresh = tmp_path / "fresh"
    assert generate(fresh, "--batches", "5").returncode == 0
    assert tree_bytes(data) == tree_bytes(fresh)


def test_a_damaged_run_manifest_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert generate(data, "--batches", "1").returncode == 0
    (data / "manifests" / "run.json").write_text('{"scenario": "driv')
    one_line_error(generate(data, "--batches", "2"), 8, "run.json", "damaged")
    (data / "manifests" / "run.json").write_text("[1, 2]")
    one_line_error(generate(data, "--batches", "2"), 8, "run.json")


def test_reading_a_damaged_manifest_raises_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert generate(data, "--batches", "2").returncode == 0
    path = data / "manifests" / "companies" / "b000000.json"
    _damage_truncated(path)
    with pytest.raises(MedallionError, match=r"b000000\.json is damaged") as raised:
        read_manifests(DataRoot(data), "companies")
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("mode", [["--batches", "10"], ["--duration", "30", "--speed", "0"]])
def test_a_run_reaching_the_end_of_time_stops_with_one_line_and_keeps_its_batches(
    tmp_path: Path, mode: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The scenario refuses a clock.start from year 3000 on, so only a run of thousands of years
    # reaches year 9999: the guard is tested in-process with its last instant moved to the end
    # of batch 2 (the small profile's batches are 15 minutes from 2026-01-05T00:00).
    import generators.runner
    from medallion import cli

    last = int(datetime(2026, 1, 5, 0, 45, tzinfo=UTC).timestamp() * 1000)
    monkeypatch.setattr(generators.runner, "LAST_INSTANT_MS", last)
    data = tmp_path / "data"
    code = cli.main(["generate", *BASE, "--data", str(data), "--start", "2026-01-05T00:00:00Z", *mode])
    err = capsys.readouterr().err.strip()
    assert code == 8 and "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in ("--start", "batch 3", "2026-01-05T00:45:00Z"):
        assert needle in err, (needle, err)
    for entity in ("companies", "drivers", "driver_events"):
        manifests = read_manifests(DataRoot(data), entity)
        assert [m.batch_id for m in manifests] == [0, 1, 2]
        for manifest in manifests:
            assert all((data / f.path).is_file() for f in manifest.files)
    # Asked for no more than fits: no error.
    assert cli.main(["generate", *BASE, "--data", str(tmp_path / "fits"), "--start", "2026-01-05T00:00:00Z", "--batches", "3"]) == 0


def test_a_start_in_year_9999_is_one_line(tmp_path: Path) -> None:
    one_line_error(generate(tmp_path / "data", "--start", "9999-12-31T23:00:00Z", "--batches", "3"), 2, "clock.start")
    assert not (tmp_path / "data" / "landing").exists()
