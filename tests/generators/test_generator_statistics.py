"""The arrival process and the samplers, tested as statistics (defects off, exact counts).

Expectations come from the scenario file (rate, hour-of-day and day-of-week multipliers,
weights), not from the generator's code.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generators.samplers import categorical_codes
from tests.support.generator import generate, load, scenario_variant
from tests.support.generator_statistics import (
    chi2_goodness,
    chi2_sf,
    per_driver_interval,
    poisson_report,
    read_lines,
)


def _no_defects(raw: dict[str, Any]) -> None:
    for entity in raw["entities"].values():
        entity["defects"] = {}


def _lam(path: Path, profile: str | None, interval_start: str) -> float:
    arrival = load(path, profile).entities["driver_events"].arrival
    assert arrival is not None and arrival.hour_of_day and arrival.day_of_week
    instant = datetime.fromisoformat(interval_start)
    return arrival.rate * arrival.hour_of_day[instant.hour] * arrival.day_of_week[instant.weekday()]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("stats")
    path = scenario_variant(tmp, "driving", _no_defects)
    generate(tmp / "run", path, 123, 8)
    return tmp / "run", path


def _counts(data: Path, path: Path, profile: str | None = None) -> list[tuple[float, np.ndarray]]:
    events = per_driver_interval(data)
    drivers = [row["driver_id"] for row in read_lines(data, "drivers")]
    hired = {row["driver_id"]: row["hired_at"] for row in read_lines(data, "drivers")}
    result = []
    for start in sorted(events):
        interval_end = (datetime.fromisoformat(start + ":00+00:00") + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")
        present = [d for d in drivers if hired[d][:16] < interval_end]
        counts = np.array([events[start].get(d, 0) for d in present])
        result.append((_lam(path, profile, start + ":00+00:00"), counts))
    return result


def test_poisson_counts_per_driver_interval(base_run: tuple[Path, Path]) -> None:
    data, path = base_run
    report = poisson_report(_counts(data, path))
    assert report.intervals == 8 and report.drivers >= 1000
    assert abs(report.mean_ratio - 1) < 0.02, report
    assert 0.95 < report.dispersion < 1.05, report
    assert report.dispersion_p > 0.001, report
    assert report.fit_p > 0.001, report


def test_the_poisson_checks_reject_overdispersed_counts() -> None:
    # The same report on counts that are not Poisson (negative binomial, same mean) must fail:
    # the statistical tests above have the power to catch a wrong arrival process.
    rng = np.random.default_rng(1)
    fake = [(3.5, rng.negative_binomial(7, 7 / (7 + 3.5), 1000)) for _ in range(8)]
    report = poisson_report(fake)
    assert report.dispersion > 1.3
    assert report.dispersion_p < 1e-6 and report.fit_p < 1e-6


def test_event_type_and_license_class_proportions(base_run: tuple[Path, Path]) -> None:
    data, path = base_run
    scenario = load(path)
    for entity, field in (("driver_events", "event_type"), ("drivers", "license_class")):
        sample = scenario.entities[entity].fields[field].sample
        weights = dict(sample.weights)  # type: ignore[union-attr]
        observed = Counter(row[field] for row in read_lines(data, entity))
        total = sum(observed.values())
        categories = list(weights)
        expected = np.array([weights[c] / sum(weights.values()) * total for c in categories])
        statistic, dof = chi2_goodness(np.array([observed[c] for c in categories]), expected)
        assert chi2_sf(statistic, dof) > 0.001, (field, observed)
        assert set(observed) == set(categories)
    events = Counter(row["event_type"] for row in read_lines(data, "driver_events"))
    total = sum(events.values())
    assert abs(events["start_driving"] / total - 0.40) < 0.01
    assert abs(events["stopped_driving"] / total - 0.35) < 0.01
    assert abs(events["delivered"] / total - 0.25) < 0.01


def test_event_times_are_uniform_within_the_interval(base_run: tuple[Path, Path]) -> None:
    data, _ = base_run
    seconds = np.array([
        int(row["event_time"][14:16]) % 15 * 60 + float(row["event_time"][17:23]) for row in read_lines(data, "driver_events")
    ])
    histogram = np.histogram(seconds, bins=15, range=(0, 900))[0]
    statistic, dof = chi2_goodness(histogram, np.full(15, seconds.size / 15))
    assert chi2_sf(statistic, dof) > 0.001


def test_hour_of_day_multiplier_is_visible_in_the_counts(tmp_path: Path) -> None:
    path = scenario_variant(tmp_path, "driving", _no_defects)
    data = tmp_path / "run"
    generate(data, path, 9, 96, "small", "--start", "2026-01-06T00:00:00Z")  # a whole Tuesday
    counts = _counts(data, path, "small")
    by_hour_observed = np.zeros(24)
    by_hour_expected = np.zeros(24)
    for (lam, per_driver), hour in zip(counts, np.repeat(np.arange(24), 4), strict=True):
        by_hour_observed[hour] += per_driver.sum()
        by_hour_expected[hour] += lam * per_driver.size
    statistic, dof = chi2_goodness(by_hour_observed, by_hour_expected)
    assert chi2_sf(statistic, dof) > 0.001
    multipliers = np.array(load(path, "small").entities["driver_events"].arrival.hour_of_day)  # type: ignore[union-attr]
    assert np.corrcoef(by_hour_observed, multipliers)[0, 1] > 0.95
    assert by_hour_observed[16] > 8 * by_hour_observed[2]  # 1.5 vs 0.1 in the scenario


@pytest.mark.parametrize("categories", [2, 3, 8, 9, 40])
def test_categorical_codes_are_numpys_choice(categories: int) -> None:
    """The categorical sampler takes the codes numpy's `choice` would from the same stream
    (the fast path compares with each boundary, the other searches), so its weights are
    exactly numpy's and seeds written before it still give the same data."""
    weights = np.random.default_rng(categories).random(categories) + 0.01
    p = weights / weights.sum()
    ours = categorical_codes(np.random.default_rng(5), p, 50_000)
    numpys = np.random.default_rng(5).choice(categories, size=50_000, p=p)
    assert ours.dtype == numpys.dtype
    np.testing.assert_array_equal(ours, numpys)
    assert set(np.unique(ours).tolist()) == set(range(categories))
