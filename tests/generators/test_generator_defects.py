"""Defect streams are independent: turning one kind off leaves every clean record as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generators.defects import bernoulli_rows
from tests.support.generator import audit, generate, load, scenario_variant
from tests.support.generator_statistics import chi2_goodness, chi2_sf

BATCHES = 3


def _lines_and_ledger(data: Path) -> tuple[dict[str, dict[bytes, str]], dict[str, set[tuple[str, str]]]]:
    """Per entity: clean lines (no ledger entry) -> key, and the ledger as (key, kind) pairs."""
    clean: dict[str, dict[bytes, str]] = {}
    ledger: dict[str, set[tuple[str, str]]] = {}
    for folder in sorted((data / "manifests").iterdir()):
        if not folder.is_dir():
            continue
        name = folder.name
        clean[name], ledger[name] = {}, set()
        for path in sorted(folder.glob("b*.json")):
            manifest = json.loads(path.read_text())
            marked = {(d["file"], d["line"]) for d in manifest["defects"]}
            ledger[name] |= {(d.get("key"), d["kind"]) for d in manifest["defects"]}
            for entry in manifest["files"]:
                for number, raw in enumerate((data / entry["path"]).read_bytes().split(b"\n")[:-1], start=1):
                    if (entry["path"], number) not in marked:
                        clean[name][raw] = raw.split(b'"')[3].decode()
    return clean, ledger


def _off(entity: str, kind: str) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        raw["entities"][entity]["defects"][kind] = 0.0

    return edit


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("all-on")
    # The same scenario through a copied file, so only the one edit differs between runs.
    path = scenario_variant(data, "driving", lambda raw: None, "driving.yaml")
    generate(data / "run", path, 5, BATCHES)
    return data / "run"


@pytest.mark.parametrize(
    ("entity", "kind"),
    [
        ("driver_events", "null_required"),
        ("driver_events", "malformed_json"),
        ("driver_events", "late"),
        ("driver_events", "orphan_fk"),
        ("driver_events", "duplicate"),
        ("drivers", "null_required"),  # cascades: events of those drivers were skipped
        ("companies", "null_required"),  # cascades twice: drivers, then their events
    ],
)
def test_turning_one_kind_off_keeps_every_clean_record(tmp_path: Path, baseline: Path, entity: str, kind: str) -> None:
    path = scenario_variant(tmp_path, "driving", _off(entity, kind), "driving.yaml")
    generate(tmp_path / "run", path, 5, BATCHES)
    clean_on, ledger_on = _lines_and_ledger(baseline)
    clean_off, ledger_off = _lines_and_ledger(tmp_path / "run")
    for name in clean_on:
        missing = set(clean_on[name]) - set(clean_off[name])
        assert not missing, f"{name}: {len(missing)} clean lines changed, e.g. {sorted(missing)[:1]}"
    assert not any(k == kind for _, k in ledger_off[entity])
    assert any(k == kind for _, k in ledger_on[entity])
    # Other kinds stay on the same records, except where the removed kind had won the row.
    moved = {key for key, k in ledger_on[entity] if k == kind}
    for name in ledger_off:
        extra = {(key, k) for key, k in ledger_off[name] - ledger_on[name] if k != "duplicate"}
        if name == entity:
            extra = {(key, k) for key, k in extra if key not in moved}
        assert not extra or name != entity, f"{name}: new defects {sorted(extra)[:3]}"
    # And the variant run is itself consistent with its ledger.
    found = audit(tmp_path / "run", load(path))
    assert found.orphans_in_clean == 0


def test_defect_rows_are_a_bernoulli_process_at_the_configured_rate() -> None:
    """Each row turns up with the rate, independently: the count per draw is binomial, every
    position is equally likely, and a rate of 1 takes every row."""
    n, rate, draws = 50_000, 0.004, 400
    counts = np.zeros(draws)
    positions = np.zeros(10)
    for seed in range(draws):
        rows = bernoulli_rows(np.random.default_rng(seed), n, rate)
        assert rows.size == 0 or (np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < n)
        counts[seed] = rows.size
        positions += np.bincount(rows * 10 // n, minlength=10)
    mean, variance = n * rate, n * rate * (1 - rate)
    # The mean of 400 binomial counts, within 4.5 standard errors; the dispersion index near 1.
    assert abs(counts.mean() - mean) < 4.5 * np.sqrt(variance / draws)
    assert 0.8 < counts.var(ddof=1) / variance < 1.2
    statistic, dof = chi2_goodness(positions, np.full(10, positions.sum() / 10))
    assert chi2_sf(statistic, dof) > 1e-4
    assert np.array_equal(bernoulli_rows(np.random.default_rng(1), 1000, 1.0), np.arange(1000))
    assert bernoulli_rows(np.random.default_rng(1), 0, 0.5).size == 0
