"""`medallion schema`, and bad scenarios failing before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medallion.cli import main
from tests.support.generator import scenario_variant


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "Scenario"
    assert {"name", "clock", "entities"} <= set(schema["properties"])
    kinds = json.dumps(schema["$defs"])
    for kind in ("sequence", "uuid", "poisson", "categorical", "vocabulary", "reference", "derived", "shaped", "degradation"):
        assert f'"{kind}"' in kinds


def _broken(tmp_path: Path, edit: Any) -> Path:
    return scenario_variant(tmp_path, "driving", edit)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # pydantic: the path, the bad value and what is allowed
        (lambda r: r["entities"]["driver_events"]["arrival"].update(rate=-1),
         ["entities.driver_events.arrival.rate", "-1", "greater than or equal to 0"]),
        (lambda r: r["entities"]["drivers"].update(spwan={"parent": "companies", "count": 3}),
         ["entities.drivers.spwan", "unknown field", "medallion schema"]),
        (lambda r: r["entities"]["driver_events"]["arrival"].update(hour_of_day=[1.0] * 23),
         ["entities.driver_events.arrival.hour_of_day", "24"]),
        (lambda r: r["entities"]["driver_events"]["fields"]["speed_kmh"]["sample"].update(kind="poisson", lam=0),
         ["speed_kmh", "lam", "greater than 0"]),
        # generator checks: the path, the bad value and the fix
        (lambda r: r["entities"]["driver_events"]["fields"]["event_type"].update(sample={"kind": "uniform", "low": 0, "high": 1}),
         ["entities.driver_events.fields.event_type.sample", "'uniform' cannot fill a string field"]),
        (lambda r: r["entities"]["companies"]["defects"].update(out_of_range=0.1),
         ["entities.companies.defects.out_of_range", "no a field with a range or an enum", "set it to 0"]),
        (lambda r: r["entities"]["driver_events"]["fields"]["driver_id"]["sample"].update(kind="parent"),
         ["entities.driver_events.fields.driver_id.sample", "kind 'parent' needs spawn"]),
        (lambda r: r["entities"]["driver_events"]["defects"]["drift"][2].update(to="boolean"),
         ["drift[2].to", "a double field can drift to ['string']", "'boolean'"]),
        (lambda r: r["entities"]["companies"]["fields"]["name"]["sample"].update(vocabulary="planets"),
         ["entities.companies.fields.name.sample.vocabulary", "'planets'", "cities"]),
    ],
)
def test_bad_scenarios_name_the_field_the_value_and_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: list[str]) -> None:
    path = _broken(tmp_path, edit)
    code, _, err = run(["schema", "--scenario", str(path)], capsys)
    assert code == 2
    for text in expected:
        assert text in err, f"{text!r} not in {err}"
    # And `generate` refuses before writing anything.
    data = tmp_path / "data"
    code, _, err = run(["generate", "--scenario", str(path), "--seed", "1", "--data", str(data), "--batches", "1", "--quiet"], capsys)
    assert code == 2
    assert not data.exists()


def test_unknown_profile_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["generate", "--scenario", "driving", "--profile", "huge", "--seed", "1", "--data", str(tmp_path), "--batches", "1"], capsys)
    assert code == 2
    assert "'huge'" in err and "scaling" in err
