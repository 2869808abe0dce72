"""Defect injection: which lines carry which defect, and the exact text each defect writes.

Each defect kind (and each scheduled drift) draws its own uniform per generated row from its
own stream, so turning one kind on or off never moves another kind's lines, and never touches a
clean value. A row picked by several kinds keeps the first in `PRIORITY`: a line carries at
most one defect. What each kind writes (DESIGN 3.3; the silver rules depend on it):

- malformed_json: the line cut short after its key, trailing garbage after the closing brace,
  or invalid UTF-8 bytes inside a string (one of the three per line).
- null_required: a required non-key field written as null or left out.
- wrong_type: a value no cast can turn into the field's type ("n/a" for a number, an object for
  a string, a fractional number for an int, "not-a-date" for a timestamp ...).
- schema_drift retype: the value as another, convertible JSON type ("12.5", 12, epoch seconds,
  "true"); rename: the value under the new key; add: an extra field (its fate is keep).
- out_of_range: the right type outside `range`, or a string outside `enum`.
- orphan_fk: a key the referenced entity can never hold (a form its sampler never produces).
- late / out_of_order: the event time moved behind the interval start (before / within the
  watermark delay); the line keeps its place among newer events.
Duplicates are extra lines, handled by the engine.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from generators import encode
from generators.samplers import Column
from generators.scenario import DriftSpec, Entity, FieldSpec, Scenario, SequenceSample, UuidSample
from generators.streams import Streams

ROW_KINDS = ("malformed_json", "null_required", "wrong_type", "out_of_range", "orphan_fk", "late", "out_of_order")
GARBAGE = (b" junk", b"}", b'{"retry":true}', b",", b"<EOF>", b'"x"')
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xe9", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80")
_WRONG = {
    "number": (b'"n/a"', b"true", b'{"value":1}', b'"twelve"', b"[1,2]"),
    "string": (b'{"text":"x"}', b'["a","b"]'),
    "timestamp": (b'"not-a-date"', b'{"ts":0}', b'"yesterday"', b"[2026,1,5]"),
    "boolean": (b'"maybe"', b'{"flag":true}', b'"unknown"', b"[true]"),
}


@dataclass
class Pick:
    """One row's defect: the kind (or drift spec) and the detail draws that shape its text."""

    kind: str
    drift: int | None  # index into defects.drift for schema_drift
    variant: int
    u1: float
    u2: float


@dataclass
class Injected:
    """A defect written on a kept row (row = position in the batch's lines before duplicates)."""

    row: int
    kind: str
    field: str | None = None
    change: str | None = None


@dataclass
class DefectPlan:
    """The defect picked for each generated row of one entity in one batch.

    `picks` holds the rows whose text must be rewritten one by one; rows that only gain a
    declared field (drift `add`) are kept as arrays in `present_adds`, since at high rates
    they can be most of the batch.
    """

    picks: dict[int, Pick] = field(default_factory=dict)
    present_adds: dict[int, np.ndarray] = field(default_factory=dict)  # drift index -> rows


class DefectInjector:
    """Plans and writes one entity's defects."""

    def __init__(self, scenario: Scenario, name: str, streams: Streams) -> None:
        self.scenario = scenario
        self.name = name
        self.entity: Entity = scenario.entities[name]
        self.streams = streams
        entity = self.entity
        defects = entity.defects
        self.added = sorted({d.field for d in defects.drift if d.change == "add" and d.field in entity.fields})
        usable = [f for f in entity.fields if f != entity.key and f not in self.added]
        self.required = [f for f in entity.required_fields if f in usable]
        self.any_field = usable
        self.ranged = [f for f in usable if entity.fields[f].range is not None or entity.fields[f].enum is not None]
        self.references = [f for f in usable if entity.fields[f].references is not None]
        self.strings = [f for f in usable if entity.fields[f].type == "string"]
        self.delay_ms = int(scenario.watermark_delay.total_seconds() * 1000)
        self.interval_ms = int(scenario.clock.interval.total_seconds() * 1000)

    # --- planning ---------------------------------------------------------------------------

    def active_drift(self, batch: int) -> list[tuple[int, DriftSpec]]:
        """Drift specs scheduled for this batch."""
        return [
            (i, d)
            for i, d in enumerate(self.entity.defects.drift)
            if d.from_batch <= batch and (d.until_batch is None or batch < d.until_batch)
        ]

    def plan(self, batch: int, n: int) -> DefectPlan:
        """Pick each kind's rows with its own stream, first kind in priority order wins."""
        plan = DefectPlan()
        defects = self.entity.defects
        drift = self.active_drift(batch)
        structural = [(i, d) for i, d in drift if d.change != "add"]
        additive = [(i, d) for i, d in drift if d.change == "add" and d.field in self.entity.fields]
        undeclared = [(i, d) for i, d in drift if d.change == "add" and d.field not in self.entity.fields]
        order: list[tuple[str, int | None, float, bool]] = []
        for kind in ("malformed_json", "null_required", "wrong_type"):
            order.append((kind, None, defects.rate(kind), False))
        order += [("schema_drift", i, d.rate, False) for i, d in structural]
        for kind in ("out_of_range", "orphan_fk", "late", "out_of_order"):
            order.append((kind, None, defects.rate(kind), False))
        order += [("schema_drift", i, d.rate, False) for i, d in undeclared]
        order += [("schema_drift", i, d.rate, True) for i, d in additive]
        taken = np.zeros(n, dtype=bool)
        for kind, drift_index, rate, bulk in order:
            if rate <= 0 or n == 0:
                continue
            purpose = f"defect:{kind}" if drift_index is None else f"drift:{drift_index}"
            rng = self.streams.rng(self.name, purpose, batch)
            chosen = np.flatnonzero(rng.random(n) < rate)
            # Detail draws for every chosen row, taken or not, keep this stream's draws fixed.
            variants = rng.integers(0, 1 << 30, chosen.size)
            u1 = rng.random(chosen.size)
            u2 = rng.random(chosen.size)
            free = ~taken[chosen]
            taken[chosen] = True
            if bulk:
                assert drift_index is not None
                plan.present_adds[drift_index] = chosen[free]
                continue
            for j in np.flatnonzero(free).tolist():
                plan.picks[int(chosen[j])] = Pick(kind, drift_index, int(variants[j]), float(u1[j]), float(u2[j]))
        return plan

    # --- writing ----------------------------------------------------------------------------

    def apply(
        self,
        plan: DefectPlan,
        kept: np.ndarray,
        columns: dict[str, Column],
        layout: encode.LineLayout,
        interval: tuple[int, int],
        added_columns: dict[str, Column],
    ) -> tuple[list[Injected], list[tuple[np.ndarray, str]]]:
        """Write the planned defects of the kept rows into the layout.

        `kept` maps line rows to generated rows. Returns the rewritten rows (one `Injected`
        each) and the rows that gained a declared field as (line rows, field) arrays.
        """
        injected: list[Injected] = []
        drift_specs = self.entity.defects.drift
        added_rows: list[tuple[np.ndarray, str]] = []
        present = {name: np.zeros(kept.size, dtype=bool) for name in self.added}
        for index, rows in plan.present_adds.items():
            name = drift_specs[index].field
            line_rows = np.flatnonzero(np.isin(kept, rows, assume_unique=True))
            present[name][line_rows] = True
            added_rows.append((line_rows, name))
        for name, mask in present.items():
            layout.omit_mask(name, ~mask)
        if plan.picks:
            position = np.full(int(kept.max()) + 1 if kept.size else 0, -1, dtype=np.int64)
            position[kept] = np.arange(kept.size)
            shifted: list[tuple[int, int]] = []
            for generated, pick in sorted(plan.picks.items()):
                row = int(position[generated]) if generated < position.size else -1
                if row < 0:
                    continue  # the row was dropped with its unit or parent
                if pick.kind in ("late", "out_of_order"):
                    instant = self._shifted_time(pick, interval)
                    if instant is None or self.entity.event_time is None:
                        continue
                    shifted.append((row, instant))
                    injected.append(Injected(row, pick.kind, field=self.entity.event_time))
                    continue
                result = self._write(pick, row, columns, layout, added_columns, drift_specs)
                if result is not None:
                    injected.append(result)
            event_time = self.entity.event_time
            if shifted and event_time is not None:
                # Encoded together: formatting thousands of instants one by one is slow.
                spec = self.entity.fields[event_time]
                instants = np.asarray([t for _, t in shifted], dtype=np.int64)
                texts = encode.encode_date(instants // 86_400_000) if spec.type == "date" else encode.encode_timestamp(instants)
                for i, (row, _) in enumerate(shifted):
                    layout.override_value(event_time, row, texts[i].tobytes())
        return injected, added_rows

    def _shifted_time(self, pick: Pick, interval: tuple[int, int]) -> int | None:
        """The event time of a late (behind the watermark delay) or out-of-order (within it) row."""
        start = interval[0]
        if pick.kind == "late":
            span = 2 * max(self.delay_ms, self.interval_ms)
            return start - self.delay_ms - 1 - int(pick.u1 * span)
        if self.delay_ms <= 0:
            return None
        return start - self.delay_ms + int(pick.u1 * self.delay_ms)

    def _write(
        self,
        pick: Pick,
        row: int,
        columns: dict[str, Column],
        layout: encode.LineLayout,
        added_columns: dict[str, Column],
        drift_specs: list[DriftSpec],
    ) -> Injected | None:
        entity = self.entity
        kind = pick.kind
        if kind == "malformed_json":
            style = pick.variant % 3
            if style == 0:
                layout.truncate(row, pick.u1, after_field=entity.key)
                return Injected(row, kind)
            if style == 1:
                layout.add_garbage(row, GARBAGE[pick.variant // 3 % len(GARBAGE)])
                return Injected(row, kind)
            bad = INVALID_UTF8[pick.variant // 3 % len(INVALID_UTF8)]
            candidates = [f for f in self.strings if not _is_null(columns[f], row)]
            if candidates:
                name = candidates[pick.variant // 15 % len(candidates)]
                text = columns[name].text(row)
                cut = 1 + int(pick.u1 * (len(text) - 1))
                layout.override_value(name, row, text[:cut] + bad + text[cut:])
                return Injected(row, kind, field=name)
            name = self.any_field[pick.variant // 15 % len(self.any_field)] if self.any_field else entity.key
            layout.override_key_bytes(name, row, bad)
            return Injected(row, kind, field=name)
        if kind == "null_required":
            if not self.required:
                return None
            name = self.required[pick.variant % len(self.required)]
            if pick.u1 < 0.5 or not layout.can_omit(name):
                layout.override_value(name, row, b"null")
            else:
                layout.omit(name, [row])
            return Injected(row, kind, field=name)
        if kind == "wrong_type":
            if not self.any_field:
                return None
            name = self.any_field[pick.variant % len(self.any_field)]
            layout.override_value(name, row, wrong_value(entity.fields[name], pick))
            return Injected(row, kind, field=name)
        if kind == "out_of_range":
            if not self.ranged:
                return None
            name = self.ranged[pick.variant % len(self.ranged)]
            layout.override_value(name, row, out_of_range_value(entity.fields[name], columns[name], row, pick))
            return Injected(row, kind, field=name)
        if kind == "orphan_fk":
            if not self.references:
                return None
            name = self.references[pick.variant % len(self.references)]
            target = entity.fields[name].references or ""
            value = json.loads(columns[name].text(row)) if not _is_null(columns[name], row) else None
            layout.override_value(name, row, encode.json_scalar(orphan_key(self.scenario, target, value, pick)))
            return Injected(row, kind, field=name)
        assert pick.drift is not None
        spec = drift_specs[pick.drift]
        if spec.change == "rename":
            layout.override_key(spec.field, row, spec.to or spec.field)
            return Injected(row, "schema_drift", field=spec.field, change="rename")
        if spec.change == "retype":
            column = columns[spec.field]
            if _is_null(column, row):
                return None  # a null has no other JSON type
            text = retyped_value(entity.fields[spec.field], column, row, spec.to or "string")
            layout.override_value(spec.field, row, text)
            return Injected(row, "schema_drift", field=spec.field, change="retype")
        # add: a declared field is present on this row (omitted elsewhere); an undeclared one
        # is appended after the last field.
        if spec.field not in entity.fields:
            value = added_columns[spec.field].text(row)
            layout.add_tail(row, encode.key_literal(spec.field, first=False) + value)
        return Injected(row, "schema_drift", field=spec.field, change="add")


def _is_null(column: Column, row: int) -> bool:
    return bool(column.nulls is not None and column.nulls[row])


def _family(spec: FieldSpec) -> str:
    if spec.type in ("int", "long", "double"):
        return "number"
    if spec.type in ("timestamp", "date"):
        return "timestamp"
    return spec.type


def wrong_value(spec: FieldSpec, pick: Pick) -> bytes:
    """JSON text no cast turns into the field's type."""
    choices = list(_WRONG[_family(spec)])
    if spec.type in ("int", "long"):
        choices.append(b"12.5")  # a fraction is not an integer
    return choices[pick.variant // 7 % len(choices)]


def _decimals_of(spec: FieldSpec) -> int:
    sample = spec.sample
    decimals = getattr(sample, "decimals", None)
    return 6 if decimals is None else int(decimals)


def out_of_range_value(spec: FieldSpec, column: Column, row: int, pick: Pick) -> bytes:
    """The right JSON type, outside the range or the enum."""
    if spec.range is not None:
        low, high = spec.range
        span = max(high - low, 1.0)
        distance = span * (0.05 + 0.95 * pick.u2)
        if spec.type in ("int", "long"):
            value: float = math.floor(low) - max(1, int(distance)) if pick.u1 < 0.5 else math.ceil(high) + max(1, int(distance))
            return str(int(value)).encode()
        places = _decimals_of(spec)
        step = 10.0**-places
        value = low - max(distance, step) if pick.u1 < 0.5 else high + max(distance, step)
        value = round(value, places)
        if low <= value <= high:  # rounding can only move it by half a step; push it out
            value = round(low - step if pick.u1 < 0.5 else high + step, places)
        return encode.json_scalar(float(value))
    allowed = set(spec.enum or [])
    current = json.loads(column.text(row)) if not _is_null(column, row) else "x"
    candidates = [str(current).upper(), f"{current}_v2", "unknown", "", "N/A", f"{current} "]
    for candidate in candidates[pick.variant % len(candidates) :] + candidates:
        if candidate not in allowed:
            return encode.json_scalar(candidate)
    return encode.json_scalar("\u2205" + "".join(sorted(allowed)))


def retyped_value(spec: FieldSpec, column: Column, row: int, to: str) -> bytes:
    """The same value in another JSON type that still converts to the field's type."""
    text = column.text(row)
    if spec.type in ("int", "long", "double"):
        return b'"' + text + b'"'
    if spec.type == "boolean":
        return b'"' + text + b'"'
    if spec.type == "timestamp":
        assert column.raw is not None
        return encode.json_scalar(round(int(column.raw[row]) / 1000, 3))
    if spec.type == "date":
        assert column.raw is not None
        return str(int(column.raw[row]) // 86_400_000).encode()
    value = json.loads(text)
    if to == "boolean":
        return b"true" if len(str(value)) % 2 else b"false"
    for parse in (int, float):
        try:
            number = parse(value)
        except (TypeError, ValueError):
            continue
        if isinstance(number, float) and not math.isfinite(number):
            continue
        return encode.json_scalar(number)
    return str(zlib.crc32(str(value).encode()) % 100_000).encode()


def orphan_key(scenario: Scenario, target: str, value: object, pick: Pick) -> object:
    """A key of the same look that the target entity's key sampler can never produce."""
    target_entity = scenario.entities[target]
    key_spec = target_entity.fields[target_entity.key]
    sample = key_spec.sample
    if key_spec.type in ("int", "long"):
        return -1 - pick.variant % 1_000_000  # sequences never go negative
    text = str(value) if value is not None else ""
    if isinstance(sample, SequenceSample):
        # Sequences are prefix + digits; an 'x' among the digits never occurs.
        digits_part = text[len(sample.prefix) :] if text.startswith(sample.prefix) else f"{pick.variant % 10**sample.width:0{sample.width}d}"
        return f"{sample.prefix}x{digits_part}"
    if isinstance(sample, UuidSample) and len(text) == 36:
        return text[:14] + "0" + text[15:]  # version nibble 0: never a generated version-4 UUID
    return f"{text}~orphan"


def time_text(spec: FieldSpec, instant: int) -> bytes:
    """JSON text of one instant as the field's type writes it."""
    if spec.type == "date":
        days = instant // 86_400_000
        return encode.row_bytes(encode.encode_date(np.asarray([days])), 0)
    return b'"' + encode.format_timestamp(instant).encode() + b'"'
