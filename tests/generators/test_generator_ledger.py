"""The manifests' defect ledger, checked against the files by an independent parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import read_manifests
from tests.support.generator import audit, generate, load

BATCHES = 7  # covers the drift schedule of driving.yaml: add from 2, rename at 4, retype at 6


@pytest.fixture(scope="module")
def driving_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("driving")
    generate(data, "driving", 11, BATCHES)
    return data


def test_every_defect_is_where_the_ledger_says_and_clean_records_match(driving_run: Path) -> None:
    found = audit(driving_run, load("driving"))
    # Every kind driving.yaml turns on was injected and found.
    for kind in ("malformed_json", "null_required", "wrong_type", "out_of_range", "duplicate", "late", "out_of_order", "orphan_fk", "schema_drift"):
        assert found.kinds[kind] > 0, kind
    assert found.orphans_in_clean == 0
    assert found.clean > 0.9 * found.lines


def test_manifests_follow_the_contract_models(driving_run: Path) -> None:
    data = DataRoot(driving_run)
    for entity in ("companies", "drivers", "driver_events"):
        manifests = read_manifests(data, entity)
        assert [m.batch_id for m in manifests] == list(range(BATCHES))
        for manifest in manifests:
            assert manifest.lines == sum(f.lines for f in manifest.files)
            for defect in manifest.defects:
                if defect.kind == "schema_drift":
                    assert defect.change in ("add", "rename", "retype")
    # Entities with no rows in a batch still get a manifest, with no files.
    quiet = [m for m in read_manifests(data, "companies") if m.lines == 0]
    assert quiet and all(m.files == [] and m.clean_records == 0 for m in quiet)


def test_malformed_lines_mix_truncation_garbage_and_invalid_utf8(driving_run: Path) -> None:
    styles = set()
    for manifest_path in sorted((driving_run / "manifests/driver_events").glob("b*.json")):
        manifest = json.loads(manifest_path.read_text())
        for defect in manifest["defects"]:
            if defect["kind"] != "malformed_json":
                continue
            raw = (driving_run / defect["file"]).read_bytes().split(b"\n")[defect["line"] - 1]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                styles.add("invalid_utf8")
                continue
            if not raw.endswith(b"}"):
                styles.add("truncated")
            else:
                styles.add("trailing_garbage")
    assert styles == {"invalid_utf8", "truncated", "trailing_garbage"}


def test_drift_schedule_matches_the_scenario(driving_run: Path) -> None:
    changes: dict[int, set[str]] = {}
    for manifest_path in sorted((driving_run / "manifests/driver_events").glob("b*.json")):
        manifest = json.loads(manifest_path.read_text())
        changes[manifest["batch_id"]] = {d["change"] for d in manifest["defects"] if d["kind"] == "schema_drift"}
    assert changes[0] == changes[1] == set()
    assert changes[2] == changes[3] == {"add"}
    assert changes[4] == {"add", "rename"}
    assert changes[5] == {"add"}
    assert changes[6] == {"add", "retype"}
