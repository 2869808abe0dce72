"""Hostile or careless scenario files fail with one short ConfigError (exit 2), never a
traceback, a hang or an allocation the run cannot make."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from medallion.cli import main
from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario import Pipeline
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario, scenario_json_schema
from tests.support.generator import scenario_variant

MAX_ERROR_CHARS = 4096


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def refused(path: Path, capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """`medallion schema --scenario PATH` exits 2 with a short message holding `expected`."""
    code, err = run(["schema", "--scenario", str(path)], capsys)
    assert code == 2, err
    assert err.startswith("medallion schema: error: ")
    assert "Traceback" not in err
    assert len(err) < MAX_ERROR_CHARS, err[:300]
    for text in expected:
        assert text in err, f"{text!r} not in {err}"
    return err


def events(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["entities"]["driver_events"]


# --- item 5: YAML aliases ---------------------------------------------------------------------


def _alias_chain(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines)


def test_an_alias_chain_under_profiles_is_refused_before_it_expands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 9 x 9 on the old code ran for minutes and gigabytes; 5 levels stay small enough to show
    # that it was accepted and expanded (59,049 leaves).
    text = (SCENARIO_DIR / "driving.yaml").read_text(encoding="utf-8")
    chain = _alias_chain(6, 9).replace("\n", "\n    ")
    path = tmp_path / "bomb.yaml"
    path.write_text(text.replace("profiles:\n", f"profiles:\n  bomb:\n    {chain}\n", 1), encoding="utf-8")
    started = time.monotonic()
    refused(path, capsys, "bomb.yaml", "aliases (*name) are not allowed")
    assert time.monotonic() - started < 5


def test_an_alias_as_a_description_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (SCENARIO_DIR / "driving.yaml").read_text(encoding="utf-8")
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_chain(4, 9) + "\n" + text.replace("\ndescription:", "\ndescription: *a3\nold_description:", 1), encoding="utf-8")
    refused(path, capsys, "aliases (*name) are not allowed")


def test_a_huge_bad_value_is_not_formatted_into_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario_variant(tmp_path, "driving", lambda r: r.update(name="A" * 200_000))
    refused(path, capsys, "name: 'AAAA", "is not an allowed identifier")


def test_thousands_of_problems_are_counted_not_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario_variant(tmp_path, "driving", lambda r: r.update({f"unknown_{i}": i for i in range(5000)}))
    refused(path, capsys, "unknown field", "more problem(s)")


# --- item 10: bounds, NaN/inf, durations, encodings, dates --------------------------------


BAD = [
    (lambda r: r["clock"].update(interval="0s"), ["clock.interval", "must be between 1ms and 7d"]),
    (lambda r: r["clock"].update(interval="999999999999d"), ["clock.interval", "out of range"]),
    (lambda r: events(r)["arrival"].update(rate=1e12), ["entities.driver_events.arrival.rate", "less than or equal to 1000000"]),
    (lambda r: events(r)["arrival"].update(rate=float("inf")), ["entities.driver_events.arrival.rate", "finite number"]),
    (lambda r: events(r)["arrival"].update(every="1ms"), ["entities.driver_events.arrival.every", "at most 100,000"]),
    (lambda r: events(r)["arrival"].update(rate=100_000.0), ["entities.driver_events", "rows per batch", "at most 50,000,000"]),
    (lambda r: r["entities"]["companies"].update(baseline=1e12), ["entities.companies.baseline", "less than or equal to 10000000"]),
    (lambda r: r["entities"]["drivers"]["spawn"].update(count=10**12), ["entities.drivers.spawn.count", "less than or equal to 10000"]),
    (lambda r: events(r)["fields"]["speed_kmh"].update(range=[0, float("nan")]), ["fields.speed_kmh.range.1", "finite number"]),
    (lambda r: events(r)["fields"]["speed_kmh"]["sample"].update(mean=float("-inf")), ["speed_kmh.sample.normal.mean", "finite number"]),
    (lambda r: r["clock"].update(start="9999-12-31T00:00:00Z"), ["clock.start", "before 3000-01-01"]),
    (lambda r: r["gold"][0]["window"].update(size="0s"), ["gold.0.window.size", "must be between 1s and 366d"]),
    (lambda r: r["gold"][0]["window"].update(size="1.5s"), ["gold.0.window.size", "whole seconds"]),
    (lambda r: r.setdefault("pipeline", {}).update(trigger_interval="0s"), ["pipeline.trigger_interval", "must be between 1ms and 1d"]),
    (lambda r: r.update(watermark_delay=-5), ["watermark_delay", "out of range"]),
    (lambda r: events(r)["expectations"][0].update(sql="x" * 5000), ["expectations.0.sql", "at most 4000 characters"]),
]


@pytest.mark.parametrize(("edit", "expected"), BAD)
def test_values_a_run_cannot_honour_are_refused_with_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: list[str]
) -> None:
    refused(scenario_variant(tmp_path, "driving", edit), capsys, *expected)


def test_a_start_override_past_the_limit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    argv = ["generate", "--scenario", "driving", "--start", "9999-12-31T23:00:00Z", "--seed", "1", "--data", str(data), "--batches", "1", "--quiet"]
    code, err = run(argv, capsys)
    assert code == 2
    assert "clock.start" in err and "before 3000-01-01" in err and "Traceback" not in err
    assert not data.exists()


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((SCENARIO_DIR / "driving.yaml").read_bytes().replace(b"description:", b"description: caf\xe9", 1))
    refused(path, capsys, "latin1.yaml", "not UTF-8 text", "save the file as UTF-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nprofiles: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper than 32 levels"),
        ("name: x\nclock: {start: 1}\nentities: {a: {baseline: " + "9" * 5000 + "}}\n", "not valid YAML"),
        ("name: x\ndescription: '" + "a" * 1_100_000 + "'\n", "larger than 1,048,576 bytes"),
    ],
)
def test_files_that_would_exhaust_the_parser_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8")
    refused(path, capsys, expected)


def test_the_json_schema_states_the_limits() -> None:
    defs = scenario_json_schema()["$defs"]
    assert defs["Arrival"]["properties"]["rate"]["maximum"] == 1_000_000
    assert defs["Entity"]["properties"]["baseline"]["maximum"] == 10_000_000
    assert defs["Spawn"]["properties"]["count"]["maximum"] == 10_000
    interval = defs["Clock"]["properties"]["interval"]
    assert (interval["minimumDuration"], interval["maximumDuration"]) == ("1ms", "7d")
    assert defs["Window"]["properties"]["size"]["minimumDuration"] == "1s"
    assert defs["Pipeline"]["properties"]["trigger_interval"]["minimumDuration"] == "1ms"
    assert defs["Clock"]["properties"]["start"]["formatExclusiveMaximum"] == "3000-01-01T00:00:00Z"
    assert defs["Expectation"]["properties"]["sql"]["maxLength"] == 4000
    assert scenario_json_schema()["properties"]["name"]["pattern"] == "^[a-z][a-z0-9_]{0,62}$"
    assert list(scenario_json_schema()["properties"]["entities"]["patternProperties"]) == ["^[a-z][a-z0-9_]{0,62}$"]


# --- item 11: silver's line limits --------------------------------------------------------


def test_pipeline_line_limits_have_defaults_and_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = load_scenario("driving").pipeline
    assert (pipeline.max_line_bytes, pipeline.max_json_depth) == (1024 * 1024, 64)
    props = scenario_json_schema()["$defs"]["Pipeline"]["properties"]
    assert (props["max_line_bytes"]["minimum"], props["max_line_bytes"]["maximum"]) == (1, 128 * 1024 * 1024)
    assert (props["max_json_depth"]["minimum"], props["max_json_depth"]["maximum"]) == (1, 1000)
    path = scenario_variant(tmp_path, "driving", lambda r: r["pipeline"].update(max_line_bytes=0, max_json_depth=10**6))
    refused(path, capsys, "pipeline.max_line_bytes", "pipeline.max_json_depth")
    path = scenario_variant(tmp_path, "driving", lambda r: r["pipeline"].update(max_line_bytes=50 * 1024 * 1024, max_json_depth=2000 // 2))
    assert load_scenario(path).pipeline.max_line_bytes == 50 * 1024 * 1024


def test_the_config_hash_of_existing_scenarios_is_unchanged_by_the_new_limits(tmp_path: Path) -> None:
    scenario = load_scenario("driving")
    dumped = scenario.model_dump(mode="json")
    for name in ("max_line_bytes", "max_json_depth"):
        assert dumped["pipeline"].pop(name) == getattr(Pipeline(), name)
    for name in ("serve", "views"):  # serving silver entities is opt-in: unset, it is not hashed
        assert dumped["export"].pop(name) == []
    for gold in dumped["gold"]:  # nor are top-N and metric expressions
        assert gold.pop("top") is None
        assert all(metric.pop("expression") is None for metric in gold["metrics"])
    before = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert scenario.sha256() == before  # a data root written before resumes
    path = scenario_variant(tmp_path, "driving", lambda r: r["pipeline"].update(max_json_depth=10))
    assert load_scenario(path).sha256() != before


# --- the same class elsewhere -------------------------------------------------------------


def test_a_vocabulary_name_cannot_leave_the_vocabulary_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit = lambda r: r["entities"]["companies"]["fields"]["name"]["sample"].update(vocabulary="../../../etc/passwd")  # noqa: E731
    refused(scenario_variant(tmp_path, "driving", edit), capsys, "vocabulary", "not an allowed identifier")


def test_an_identifier_with_a_trailing_newline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(scenario_variant(tmp_path, "driving", lambda r: r.update(name="driving\n")), capsys, "name", "not an allowed identifier")


def test_a_password_variable_must_look_like_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit = lambda r: r.setdefault("export", {}).setdefault("postgres", {}).update(password_env="A=B; rm -rf")  # noqa: E731
    refused(scenario_variant(tmp_path, "driving", edit), capsys, "export.postgres.password_env")


def test_a_broken_profile_fails_when_the_file_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario_variant(tmp_path, "driving", lambda r: r["profiles"].update(broken={"clock": {"interval": "0s"}}))
    refused(path, capsys, "profiles.broken: clock.interval", "must be between 1ms and 7d")


def test_a_profile_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    path = scenario_variant(tmp_path, "driving", lambda r: r["profiles"].update(small=[1, 2]))
    with pytest.raises(ConfigError, match="profiles: must map each profile name to a mapping"):
        load_scenario(path, profile="small")


def test_every_built_in_scenario_and_profile_still_loads() -> None:
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for profile in [None, *raw.get("profiles", {})]:
            assert load_scenario(path.stem, profile=profile).name == raw["name"]
