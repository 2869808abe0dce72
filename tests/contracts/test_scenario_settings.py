"""`--set PATH=VALUE`: any field of any scenario, validated like the file; clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario

SCENARIOS = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_takes_settings_at_every_level(name: str) -> None:
    plain = load_scenario(name)
    entity = plain.processing_order[-1]
    field = next(iter(plain.entities[entity].fields))
    changed = load_scenario(name, settings=[
        "clock.speed=42",
        "clock.interval=30m",
        "pipeline.quality_threshold=0.5",  # a section the file may leave to its defaults
        f"entities.{entity}.files_per_batch=3",
        f"entities.{entity}.fields.{field}.description=set from the command line",
        "gold.0.window.size=2h",
    ])
    assert changed.clock.speed == 42
    assert changed.clock.interval == timedelta(minutes=30)
    assert changed.pipeline.quality_threshold == 0.5
    assert changed.entities[entity].files_per_batch == 3
    assert changed.entities[entity].fields[field].description == "set from the command line"
    assert changed.gold[0].window.size == timedelta(hours=2)
    assert changed.sha256() != plain.sha256()  # part of the run's identity
    # Everything not set is as the file says.
    assert changed.entities[entity].fields[field].sample == plain.entities[entity].fields[field].sample


def test_settings_apply_after_the_profiles_and_the_last_one_wins() -> None:
    scenario = load_scenario("driving", profile="cadence_5s", settings=["clock.speed=7", "clock.speed=9"])
    assert scenario.clock.speed == 9
    assert scenario.entities["companies"].baseline == 0  # the profile's value, untouched
    sampled = load_scenario("turbofan", settings=["entities.readings.fields.vibration_mm_s.sample.noise_std=1.5"])
    sample = sampled.entities["readings"].fields["vibration_mm_s"].sample
    assert sample is not None and sample.kind == "degradation" and sample.noise_std == 1.5
    listed = load_scenario("driving", profile="cadence_5s", settings=["entities.driver_events.arrival.count_range=[4, 8]"])
    arrival = listed.entities["driver_events"].arrival
    assert arrival is not None and arrival.count_range == (4, 8)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("clock.sped=1", "clock.sped: 'sped' is not a field of clock; known fields: backfill, interval, live_interval, speed, start"),
        ("entities.trucks.baseline=3", "entities.trucks.baseline: entities has no 'trucks'; it has companies, driver_events, drivers"),
        ("gold.5.window.size=1h", "gold.5.window.size: gold has no '5'; it has 0"),
        ("clock.speed.x=1", "clock.speed.x: clock.speed is a single value; set clock.speed itself"),
        ("entities.companies.fields.name.sample.mean=3", "'mean' is not a field of entities.companies.fields.name.sample; known fields: kind, skew, vocabulary, zipf_a"),
        ("clock.speed", "'clock.speed' is not PATH=VALUE"),
        ("clock..speed=1", "is not PATH=VALUE with a dotted PATH"),
        ("clock.speed=[1", "clock.speed: the value is not valid YAML"),
        ("clock.speed=*a", "aliases (*name) are not allowed"),
    ],
)
def test_a_wrong_path_names_the_field_and_the_fix(setting: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_scenario("driving", settings=[setting])
    assert message in str(caught.value)
    assert "--set" in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("clock.speed=-1", "clock.speed: Input should be greater than or equal to 0 (got -1)"),
        ("clock.speed=fast", "clock.speed: Input should be a valid number"),
        ("entities.companies.baseline=many", "entities.companies.baseline: Input should be a valid integer"),
        ("entities.driver_events.defects.duplicate=0.9", "entities.driver_events.defects.duplicate"),
        ("clock.start=yesterday", "clock.start"),
    ],
)
def test_a_bad_value_is_refused_by_the_scenario_model(setting: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_scenario("driving", settings=[setting])
    text = str(caught.value)
    assert message in text
    assert f"with --set {setting}: fix the value named above" in text
