"""Helpers for the generator tests: run `medallion generate`, and re-derive the ledger from the
landing files with nothing but `json` and the scenario's declared schema.

`audit` is deliberately independent of the generator's code: it parses every line, classifies
it by the rules of docs/design.md §3.5 (using the field types, ranges, enums, references, event time and
watermark delay the scenario declares) and compares the result with the manifests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from medallion.cli import main
from medallion.contracts.scenario import Entity, FieldSpec, Scenario
from medallion.contracts.scenario_base import SCENARIO_DIR
from medallion.contracts.scenario_loader import load_scenario

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEEP = {"late", "out_of_order"}


def generate(data: Path, scenario: str | Path, seed: int, batches: int, profile: str | None = None, *extra: str) -> None:
    """Run `medallion generate` in-process and fail the test on a non-zero exit."""
    argv = ["generate", "--scenario", str(scenario), "--seed", str(seed), "--data", str(data), "--batches", str(batches), "--quiet", "--no-fsync"]
    if profile:
        argv += ["--profile", profile]
    argv += list(extra)
    assert main(argv) == 0


def scenario_variant(tmp: Path, name: str, edit: Any, filename: str = "variant.yaml") -> Path:
    """A copy of a built-in scenario file with `edit(raw_dict)` applied."""
    raw = yaml.safe_load((SCENARIO_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    edit(raw)
    path = tmp / filename
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden lock file excluded) by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def value_issue(spec: FieldSpec, value: Any) -> str | None:
    """'wrong_type', 'retype' (convertible other JSON type), 'out_of_range' or None."""
    kind = spec.type
    if kind == "string":
        if isinstance(value, str):
            if spec.enum is not None and value not in spec.enum:
                return "out_of_range"
            return None
        return "retype" if _is_number(value) or isinstance(value, bool) else "wrong_type"
    if kind in ("int", "long", "double"):
        ok = _is_number(value) and (kind == "double" or isinstance(value, int))
        if not ok:
            if _numeric_string(value):
                return "retype"
            return "wrong_type"
        if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
            return "out_of_range"
        return None
    if kind == "boolean":
        if isinstance(value, bool):
            return None
        return "retype" if isinstance(value, str) and value.lower() in ("true", "false") else "wrong_type"
    if kind == "timestamp":
        if isinstance(value, str) and _TIMESTAMP.match(value):
            return None
        return "retype" if _is_number(value) else "wrong_type"
    if kind == "date":
        if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\d$", value):
            return None
        return "retype" if _is_number(value) else "wrong_type"
    raise AssertionError(kind)


@dataclass
class Audit:
    """What the independent parse found."""

    lines: int = 0
    clean: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    clean_keys: dict[str, set[str]] = field(default_factory=dict)
    clean_rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    clean_lines: dict[str, dict[str, bytes]] = field(default_factory=dict)
    orphans_in_clean: int = 0


def _classify(entity: Entity, scenario: Scenario, raw: bytes, interval_start: datetime, audit: Audit, name: str, all_keys: dict[str, set[str]]) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(kind, field, parsed object) of one line; kind None for a clean line."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text)  # raises on trailing garbage ("Extra data") and truncation
    except (UnicodeDecodeError, ValueError):
        return "malformed_json", None, None
    if not isinstance(obj, dict):
        return "malformed_json", None, None
    issues: list[tuple[str, str | None]] = []
    declared = set(entity.fields)
    unknown = set(obj) - declared
    absent = [f for f in entity.fields if f not in obj]
    if unknown and absent:
        issues.append(("rename", absent[0]))
    for fname, spec in entity.fields.items():
        if fname not in obj:
            if (spec.required or fname == entity.key) and not unknown:
                issues.append(("null_required", fname))
            continue
        value = obj[fname]
        if value is None:
            if spec.required or fname == entity.key:
                issues.append(("null_required", fname))
            continue
        issue = value_issue(spec, value)
        if issue is not None:
            issues.append((issue, fname))
            continue
        if spec.references is not None and value not in audit.clean_keys.get(spec.references, set()):
            issues.append(("orphan_fk", fname))
    if entity.event_time and not any(f == entity.event_time for _, f in issues) and isinstance(obj.get(entity.event_time), str):
        instant = _parse_instant(obj[entity.event_time])
        delay = scenario.watermark_delay
        if instant < interval_start - delay:
            issues.append(("late", entity.event_time))
        elif instant < interval_start:
            issues.append(("out_of_order", entity.event_time))
    assert len(issues) <= 1, f"{name}: a line carries more than one defect: {issues}: {raw[:200]!r}"
    if not issues:
        return None, None, obj
    kind, fname = issues[0]
    if kind == "orphan_fk":
        target = entity.fields[fname or ""].references or ""
        assert obj[fname] not in all_keys.get(target, set()), f"orphan {obj[fname]} exists in {target}"
    return kind, fname, obj


def added_fields(entity: Entity) -> set[str]:
    """Fields a schema-drift `add` introduces (absent from lines that do not carry it)."""
    return {d.field for d in entity.defects.drift if d.change == "add"}


def audit(data: Path, scenario: Scenario) -> Audit:
    """Re-derive every manifest's ledger from the files and assert they agree."""
    result = Audit()
    # Every key any line of an entity ever carries (for "an orphan can never exist").
    all_keys: dict[str, set[str]] = {}
    for name, entity in scenario.entities.items():
        keys: set[str] = set()
        for path in sorted((data / "landing" / name).glob("*.jsonl")):
            for raw in path.read_bytes().split(b"\n")[:-1]:
                match = re.search(rb'"' + entity.key.encode() + rb'":"([^"]*)"', raw)
                if match:
                    keys.add(match[1].decode("utf-8", "replace"))
        all_keys[name] = keys
    batches = sorted(int(p.stem[1:]) for p in (data / "manifests" / scenario.processing_order[0]).glob("b*.json"))
    for name in scenario.processing_order:
        result.clean_keys[name] = set()
        result.clean_rows[name] = {}
        result.clean_lines[name] = {}
    for batch in batches:
        for name in scenario.processing_order:
            entity = scenario.entities[name]
            manifest = json.loads((data / "manifests" / name / f"b{batch:06d}.json").read_text(encoding="utf-8"))
            assert manifest["entity"] == name and manifest["batch_id"] == batch and manifest["scenario"] == scenario.name
            assert manifest["config_sha256"] == scenario.sha256()
            ledger = {(d["file"], d["line"]): d for d in manifest["defects"]}
            assert len(ledger) == len(manifest["defects"]), "two ledger entries for one line"
            interval_start = _parse_instant(manifest["interval_start"])
            lines_total = 0
            clean = 0
            counts: Counter[str] = Counter()
            seen_in_batch = 0
            for entry in manifest["files"]:
                content = (data / entry["path"]).read_bytes()
                assert hashlib.sha256(content).hexdigest() == entry["sha256"]
                assert content.endswith(b"\n")
                lines = content.split(b"\n")[:-1]
                assert len(lines) == entry["lines"]
                lines_total += len(lines)
                for number, raw in enumerate(lines, start=1):
                    seen_in_batch += 1
                    recorded = ledger.pop((entry["path"], number), None)
                    kind, fname, obj = _classify(entity, scenario, raw, interval_start, result, name, all_keys)
                    key = obj.get(entity.key) if obj is not None else None
                    if obj is not None and key in result.clean_keys[name]:
                        # A key seen before in clean data: only ever as an exact re-emit (whose
                        # event time may well be behind this batch's interval).
                        assert result.clean_lines[name][key] == raw, f"{name} key {key} repeated with other bytes"
                        kind = "duplicate"
                    where = f"{entry['path']}:{number}"
                    if kind is None:
                        if recorded is not None and recorded.get("change") == "add":
                            kind = "schema_drift"
                        else:
                            assert recorded is None, f"{where}: clean line ledgered as {recorded}"
                            carried = added_fields(entity) & set(obj or {})
                            assert not carried, f"{where}: carries {carried} without a ledgered add"
                    if kind is None or (kind == "schema_drift" and recorded and recorded.get("change") == "add"):
                        if kind == "schema_drift":
                            assert recorded is not None and recorded["field"] in obj  # type: ignore[operator]
                            counts["schema_drift"] += 1
                        clean += 1
                        result.clean_keys[name].add(key)
                        result.clean_rows[name][key] = obj  # type: ignore[assignment]
                        result.clean_lines[name][key] = raw
                        continue
                    assert recorded is not None, f"{where}: {kind} ({fname}) not in the ledger: {raw[:160]!r}"
                    expected_kind = "schema_drift" if kind in ("rename", "retype") else kind
                    assert recorded["kind"] == expected_kind, f"{where}: found {kind}, ledger says {recorded}"
                    if kind in ("rename", "retype"):
                        assert recorded["change"] == kind
                    if kind in ("null_required", "wrong_type", "out_of_range", "orphan_fk", "late", "out_of_order", "retype"):
                        assert recorded.get("field") == fname, f"{where}: field {fname} vs {recorded}"
                    if kind == "duplicate":
                        assert recorded["key"] == key
                        source_file, source_line = recorded["repeats"].rsplit(":", 1)
                        source = (data / source_file).read_bytes().split(b"\n")[int(source_line) - 1]
                        assert source == raw
                    elif kind == "malformed_json":
                        # The key survives where the ledger names one.
                        assert recorded["key"].encode() in raw
                    else:
                        assert recorded["key"] == key
                    counts[recorded["kind"]] += 1
                    if kind in KEEP:
                        clean += 1
                        result.clean_keys[name].add(key)
                        result.clean_rows[name][key] = obj  # type: ignore[assignment]
                        result.clean_lines[name][key] = raw
            assert not ledger, f"{name} b{batch}: ledger entries for lines that do not exist: {list(ledger)[:3]}"
            assert manifest["lines"] == lines_total
            assert manifest["clean_records"] == clean, f"{name} b{batch}: clean {clean} != {manifest['clean_records']}"
            assert {k: v for k, v in manifest["defect_counts"].items() if v} == dict(counts)
            result.lines += lines_total
            result.clean += clean
            result.kinds.update(counts)
    # Zero orphans in clean data: every reference of a clean row points at a clean row.
    for name, entity in scenario.entities.items():
        for spec_name, spec in entity.fields.items():
            if spec.references is None:
                continue
            targets = result.clean_keys[spec.references]
            for row in result.clean_rows[name].values():
                if row.get(spec_name) is not None and row[spec_name] not in targets:
                    result.orphans_in_clean += 1
    return result


def load(name: str | Path, profile: str | None = None, start: str | None = None, settings: tuple[str, ...] = ()) -> Scenario:
    """A scenario as `medallion generate` would use it (`settings`: its `--set PATH=VALUE`s)."""
    overrides = {"clock": {"start": start}} if start else None
    return load_scenario(name, profile=profile, overrides=overrides, settings=settings)


__all__ = ["Audit", "audit", "generate", "load", "scenario_variant", "timedelta", "tree_bytes"]
