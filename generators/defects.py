"""Defect injection: which lines carry which defect, and the exact text each defect writes.

Each defect kind (and each scheduled drift) draws its own uniform per generated row from its
own stream, so turning one kind on or off never moves another kind's lines, and never touches a
clean value. A row picked by several kinds keeps the first in `PRIORITY`: a line carries at
most one defect. What each kind writes (docs/design.md §3.5; the silver rules depend on it):

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
from generators.streams import Streams
from medallion.contracts.defects import ADDED_FIELD, DefectKind, Fate
from medallion.contracts.sampler_specs import SequenceSample, UuidSample
from medallion.contracts.scenario import DriftSpec, Entity, FieldSpec, Scenario

# The order kinds pick rows in: a row picked by several keeps the first (structural drift comes
# between the two groups, added fields after both; see `DefectInjector.plan`).
PRIORITY_BEFORE_DRIFT = (DefectKind.MALFORMED_JSON, DefectKind.NULL_REQUIRED, DefectKind.WRONG_TYPE)
PRIORITY_AFTER_DRIFT = (DefectKind.OUT_OF_RANGE, DefectKind.ORPHAN_FK, DefectKind.LATE, DefectKind.OUT_OF_ORDER)
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

    kind: DefectKind
    drift: int | None  # index into defects.drift for schema_drift
    variant: int
    u1: float
    u2: float


@dataclass(frozen=True)
class Picked:
    """The rows one entry of a plan picked, as parallel arrays: each row's line (its position
    among the batch's lines before duplicates), the same row among the generated ones (the rows
    of the sampled columns) and the detail draws that shape its text."""

    lines: np.ndarray
    sources: np.ndarray
    variant: np.ndarray
    u1: np.ndarray
    u2: np.ndarray

    def __getitem__(self, which: np.ndarray) -> Picked:
        """The rows a mask (or index array) selects."""
        return Picked(self.lines[which], self.sources[which], self.variant[which], self.u1[which], self.u2[which])

    def pick(self, i: int, kind: DefectKind, drift: int | None = None) -> Pick:
        """Row i's draws, for the writers that go row by row."""
        return Pick(kind, drift, int(self.variant[i]), float(self.u1[i]), float(self.u2[i]))


@dataclass(frozen=True)
class DefectLines:
    """Lines that carry one defect kind (on one field, for one drift change)."""

    lines: np.ndarray  # positions among the batch's lines before duplicates
    kind: DefectKind
    field: str | None = None
    change: str | None = None

    @property
    def fate(self) -> Fate:
        return self.kind.fate(self.change)


@dataclass
class Injected:
    """Every defect written on one entity's lines of a batch, a group of lines per kind (and
    field, and drift change); a line is in at most one group."""

    groups: list[DefectLines] = field(default_factory=list)

    def add(self, lines: np.ndarray | list[int], kind: DefectKind, field_name: str | None = None, change: str | None = None) -> None:
        """Record `kind` on these lines."""
        lines = np.asarray(lines, dtype=np.int64)
        if lines.size:
            self.groups.append(DefectLines(lines, kind, field_name, change))

    def mask(self, n_lines: int) -> np.ndarray:
        """Which of the batch's lines (before duplicates) carry a defect."""
        defective = np.zeros(n_lines, dtype=bool)
        for group in self.groups:
            defective[group.lines] = True
        return defective

    @property
    def count(self) -> int:
        return int(sum(g.lines.size for g in self.groups))


@dataclass
class DefectPlan:
    """The defect picked for each generated row of one entity in one batch, as arrays: the
    rows, which entry of `order` won each, and that entry's detail draws."""

    order: list[tuple[DefectKind, int | None]] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    entry: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    variant: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    u1: np.ndarray = field(default_factory=lambda: np.zeros(0))
    u2: np.ndarray = field(default_factory=lambda: np.zeros(0))
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
        self.added = sorted({d.field for d in defects.drift if d.change == ADDED_FIELD and d.field in entity.fields})
        usable = [f for f in entity.fields if f != entity.key and f not in self.added]
        self.required = [f for f in entity.required_fields if f in usable]
        self.any_field = usable
        self.ranged = [f for f in usable if entity.fields[f].range is not None or entity.fields[f].enum is not None]
        self.references = [f for f in usable if entity.fields[f].references is not None]
        self.strings = [f for f in usable if entity.fields[f].type == "string"]
        self.delay_ms = int(scenario.watermark_delay.total_seconds() * 1000)
        self.interval_ms = int(scenario.clock.interval.total_seconds() * 1000)
        self._wrong_tables = {f: encode.bytes_table(wrong_values(entity.fields[f])) for f in usable}
        self._enum_tables: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}

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
        structural = [(i, d) for i, d in drift if d.change != ADDED_FIELD]
        additive = [(i, d) for i, d in drift if d.change == ADDED_FIELD and d.field in self.entity.fields]
        undeclared = [(i, d) for i, d in drift if d.change == ADDED_FIELD and d.field not in self.entity.fields]
        drift_kind = DefectKind.SCHEMA_DRIFT
        order: list[tuple[DefectKind, int | None, float, bool]] = []
        for kind in PRIORITY_BEFORE_DRIFT:
            order.append((kind, None, defects.rate(kind), False))
        order += [(drift_kind, i, d.rate, False) for i, d in structural]
        for kind in PRIORITY_AFTER_DRIFT:
            order.append((kind, None, defects.rate(kind), False))
        order += [(drift_kind, i, d.rate, False) for i, d in undeclared]
        order += [(drift_kind, i, d.rate, True) for i, d in additive]
        plan.order = [(kind, index) for kind, index, _, _ in order]
        taken = np.zeros(n, dtype=bool)
        parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]] = []
        for position, (kind, drift_index, rate, bulk) in enumerate(order):
            if rate <= 0 or n == 0:
                continue
            purpose = f"defect:{kind}" if drift_index is None else f"drift:{drift_index}"
            rng = self.streams.rng(self.name, purpose, batch)
            chosen = bernoulli_rows(rng, n, rate)
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
            parts.append((chosen[free], position, variants[free], u1[free], u2[free]))
        if parts:
            plan.rows = np.concatenate([p[0] for p in parts])
            plan.entry = np.concatenate([np.full(p[0].size, p[1]) for p in parts])
            plan.variant = np.concatenate([p[2] for p in parts])
            plan.u1 = np.concatenate([p[3] for p in parts])
            plan.u2 = np.concatenate([p[4] for p in parts])
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
    ) -> Injected:
        """Write the planned defects of the kept rows into the layout.

        `kept` maps line rows to generated rows, the rows of `columns` and `added_columns`
        (the layout reads its values through the same map). Returns every line written with a
        defect, the lines that gained a declared field among them. Common kinds are written for
        all their rows at once; rare, irregular ones (malformed lines, orphans, drift) row by row.
        """
        injected = Injected()
        added = self._present_adds(plan, kept, layout)
        if plan.rows.size and kept.size:
            position = np.full(max(int(kept.max()), int(plan.rows.max())) + 1, -1, dtype=np.int64)
            position[kept] = np.arange(kept.size)
            lines = position[plan.rows]
            alive = lines >= 0  # rows dropped with their unit or parent carry nothing
            for entry_index, (kind, drift_index) in enumerate(plan.order):
                chosen = alive & (plan.entry == entry_index)
                if chosen.any():
                    picked = Picked(lines[chosen], plan.rows[chosen], plan.variant[chosen], plan.u1[chosen], plan.u2[chosen])
                    self._write_kind(kind, drift_index, picked, columns, added_columns, layout, interval, injected)
        injected.groups += added.groups
        return injected

    def _present_adds(self, plan: DefectPlan, kept: np.ndarray, layout: encode.LineLayout) -> Injected:
        """Declared fields a drift adds: omitted from every line but those that carry them."""
        added = Injected()
        drift_specs = self.entity.defects.drift
        present = {name: np.zeros(kept.size, dtype=bool) for name in self.added}
        for index, rows in plan.present_adds.items():
            name = drift_specs[index].field
            # The kept rows among `rows`, by a mask (np.isin would sort them).
            carries = np.zeros(max(int(kept.max(initial=-1)), int(rows.max(initial=-1))) + 1, dtype=bool)
            carries[rows] = True
            line_rows = np.flatnonzero(carries[kept])
            present[name][line_rows] = True
            added.add(line_rows, DefectKind.SCHEMA_DRIFT, name, ADDED_FIELD)
        for name, mask in present.items():
            layout.omit_mask(name, ~mask)
        return added

    def _write_kind(
        self, kind: DefectKind, drift_index: int | None, picked: Picked, columns: dict[str, Column],
        added_columns: dict[str, Column], layout: encode.LineLayout, interval: tuple[int, int], injected: Injected,
    ) -> None:
        """Write one entry of the plan: a kind, or one scheduled drift."""
        drift_specs = self.entity.defects.drift
        if kind in (DefectKind.LATE, DefectKind.OUT_OF_ORDER):
            self._shift_times(kind, picked, interval, layout, injected)
        elif kind == DefectKind.NULL_REQUIRED:
            self._nulls(picked, layout, injected)
        elif kind == DefectKind.WRONG_TYPE:
            self._wrong_types(picked, layout, injected)
        elif kind == DefectKind.OUT_OF_RANGE:
            self._out_of_range(picked, columns, layout, injected)
        elif kind == DefectKind.SCHEMA_DRIFT and drift_index is not None and drift_specs[drift_index].change == "rename":
            spec = drift_specs[drift_index]
            layout.override_keys(spec.field, picked.lines, spec.to or spec.field)
            injected.add(picked.lines, DefectKind.SCHEMA_DRIFT, spec.field, "rename")
        elif kind == DefectKind.MALFORMED_JSON:
            self._malformed(picked, columns, layout, injected)
        elif (kind == DefectKind.ORPHAN_FK and self._orphans(picked, columns, layout, injected)) or (
            kind == DefectKind.SCHEMA_DRIFT
            and drift_index is not None
            and self._drift_at_once(drift_specs[drift_index], picked, columns, added_columns, layout, injected)
        ):
            pass  # written all at once
        else:
            self._row_by_row(kind, drift_index, picked, columns, layout, injected)

    def _row_by_row(
        self, kind: DefectKind, drift_index: int | None, picked: Picked,
        columns: dict[str, Column], layout: encode.LineLayout, injected: Injected,
    ) -> None:
        """Rare and irregular defects, one row at a time, recorded per (kind, field, change)."""
        marks: dict[tuple[DefectKind, str | None, str | None], list[int]] = {}
        drift_specs = self.entity.defects.drift
        for i, (row, source) in enumerate(zip(picked.lines.tolist(), picked.sources.tolist(), strict=True)):
            mark = self._write(picked.pick(i, kind, drift_index), row, source, columns, layout, drift_specs)
            if mark is not None:
                marks.setdefault(mark, []).append(row)
        for (mark_kind, mark_field, change), marked in marks.items():
            injected.add(marked, mark_kind, mark_field, change)

    def _malformed(self, picked: Picked, columns: dict[str, Column], layout: encode.LineLayout, injected: Injected) -> None:
        """Malformed lines as `_write` makes them one by one, but those that need no look at
        their values all at once: cut short (variant % 3 == 0) and trailing garbage (1), since
        they are common and `_write` is slow per row. Invalid UTF-8 inside a value or key (2)
        stays row by row."""
        style = picked.variant % 3
        cut = style == 0
        layout.truncate_rows(picked.lines[cut], picked.u1[cut], after_field=self.entity.key)
        garbage = style == 1
        layout.add_garbages(picked.lines[garbage], [GARBAGE[v // 3 % len(GARBAGE)] for v in picked.variant[garbage].tolist()])
        injected.add(picked.lines[cut | garbage], DefectKind.MALFORMED_JSON, None, None)
        self._row_by_row(DefectKind.MALFORMED_JSON, None, picked[style == 2], columns, layout, injected)

    def _orphans(self, picked: Picked, columns: dict[str, Column], layout: encode.LineLayout, injected: Injected) -> bool:
        """Orphan keys for sequence-keyed targets, all at once: an 'x' after the prefix (a form the
        sequence never writes). False when a target needs the row-by-row path."""
        if not self.references:
            return True
        which = picked.variant % len(self.references)
        plans = []
        for index, name in enumerate(self.references):
            mine = which == index
            if not mine.any():
                continue
            target = self.scenario.entities[self.entity.fields[name].references or ""]
            sample = target.fields[target.key].sample
            column = columns[name]
            if not isinstance(sample, SequenceSample) or column.nulls is not None or target.fields[target.key].type != "string":
                return False
            plans.append((name, mine, len(encode.json_scalar(sample.prefix)) - 1))
        for name, mine, head in plans:
            texts = np.take(columns[name].enc, picked.sources[mine], axis=0)
            marker = np.full((texts.shape[0], 1), ord("x"), dtype=np.uint8)
            layout.override_values(name, picked.lines[mine], np.hstack([texts[:, :head], marker, texts[:, head:]]))
            injected.add(picked.lines[mine], DefectKind.ORPHAN_FK, name)
        return True

    def _drift_at_once(
        self,
        spec: DriftSpec,
        picked: Picked,
        columns: dict[str, Column],
        added_columns: dict[str, Column],
        layout: encode.LineLayout,
        injected: Injected,
    ) -> bool:
        """Drift that is the same text operation on every row, all at once: a number or boolean
        retyped to a string (its own text in quotes; nulls have no other JSON type and stay),
        and an undeclared added field (after the last declared one).
        Padding anywhere in a row is dropped when the line is laid out, so the pieces can stay
        padded. False for any other drift, which takes the row-by-row path."""
        rows, sources = picked.lines, picked.sources
        if spec.change == "retype" and self.entity.fields[spec.field].type in QUOTED_WHEN_RETYPED:
            column = columns[spec.field]
            if column.nulls is not None:
                valued = ~column.nulls[sources]
                rows, sources = rows[valued], sources[valued]
            quote = np.full((rows.size, 1), ord('"'), dtype=np.uint8)
            layout.override_values(spec.field, rows, np.hstack([quote, np.take(column.enc, sources, axis=0), quote]))
        elif spec.change == ADDED_FIELD and spec.field not in self.entity.fields:
            key = np.frombuffer(encode.key_literal(spec.field, first=False), dtype=np.uint8)
            values = np.take(added_columns[spec.field].enc, sources, axis=0)
            layout.add_tails(rows, np.hstack([np.broadcast_to(key, (rows.size, key.size)), values]))
        else:
            return False
        injected.add(rows, DefectKind.SCHEMA_DRIFT, spec.field, spec.change)
        return True

    def _shift_times(
        self, kind: DefectKind, picked: Picked, interval: tuple[int, int], layout: encode.LineLayout, injected: Injected
    ) -> None:
        """Late rows fall behind the watermark delay; out-of-order ones within it."""
        name = self.entity.event_time
        if name is None:
            return
        start = interval[0]
        if kind == DefectKind.LATE:
            span = 2 * max(self.delay_ms, self.interval_ms)
            instants = start - self.delay_ms - 1 - (picked.u1 * span).astype(np.int64)
        else:
            if self.delay_ms <= 0:
                return
            instants = start - self.delay_ms + (picked.u1 * self.delay_ms).astype(np.int64)
        if self.entity.fields[name].type == "date":
            texts = encode.encode_date(instants // 86_400_000)
        else:
            texts = encode.encode_timestamp(instants)
        layout.override_values(name, picked.lines, texts)
        injected.add(picked.lines, kind, name)

    def _nulls(self, picked: Picked, layout: encode.LineLayout, injected: Injected) -> None:
        """A required field written as null, or (half the time) left out."""
        if not self.required:
            return
        rows = picked.lines
        which = picked.variant % len(self.required)
        for index, name in enumerate(self.required):
            mine = which == index
            if not mine.any():
                continue
            remove = mine & (picked.u1 >= 0.5) if layout.can_omit(name) else np.zeros_like(mine)
            as_null = mine & ~remove
            layout.override_values(name, rows[as_null], np.tile(np.frombuffer(b"null", dtype=np.uint8), (int(as_null.sum()), 1)))
            layout.omit_rows(name, rows[remove])
            injected.add(rows[mine], DefectKind.NULL_REQUIRED, name)

    def _wrong_types(self, picked: Picked, layout: encode.LineLayout, injected: Injected) -> None:
        """A value of a JSON type no cast can turn into the field's type."""
        if not self.any_field:
            return
        which = picked.variant % len(self.any_field)
        for index, name in enumerate(self.any_field):
            mine = which == index
            if not mine.any():
                continue
            table = self._wrong_tables[name]
            layout.override_values(name, picked.lines[mine], np.take(table, (picked.variant[mine] // 7) % table.shape[0], axis=0))
            injected.add(picked.lines[mine], DefectKind.WRONG_TYPE, name)

    def _out_of_range(self, picked: Picked, columns: dict[str, Column], layout: encode.LineLayout, injected: Injected) -> None:
        """Numbers beyond the range (vectorised); strings outside the enum (row by row)."""
        if not self.ranged:
            return
        which = picked.variant % len(self.ranged)
        for index, name in enumerate(self.ranged):
            mine = which == index
            if not mine.any():
                continue
            spec = self.entity.fields[name]
            column = columns[name]
            rows = picked.lines[mine]
            if spec.range is None and column.labels is not None and column.raw is not None:
                layout.override_values(name, rows, self._outside_enum(name, column, picked.sources[mine], picked.variant[mine]))
            elif spec.range is None:
                for i in np.flatnonzero(mine).tolist():
                    pick = picked.pick(i, DefectKind.OUT_OF_RANGE)
                    layout.override_value(name, int(picked.lines[i]), out_of_range_value(spec, column, int(picked.sources[i]), pick))
            else:
                layout.override_values(name, rows, out_of_range_numbers(spec, picked.u1[mine], picked.u2[mine]))
            injected.add(rows, DefectKind.OUT_OF_RANGE, name)

    def _outside_enum(self, name: str, column: Column, sources: np.ndarray, variant: np.ndarray) -> np.ndarray:
        """`out_of_range_value` for many rows of a column of words: looked up in a table of
        every (word, variant) answer, built once per field."""
        assert column.labels is not None and column.raw is not None
        table = self._enum_tables.get(name)
        if table is None or table[0] != column.labels:
            words = [*column.labels, NULL_WORD]
            texts = [outside_enum(self.entity.fields[name], word, start) for word in words for start in range(ENUM_VARIANTS)]
            table = self._enum_tables[name] = (column.labels, encode.bytes_table(texts))
        codes = np.take(column.raw, sources).astype(np.int64)
        if column.nulls is not None:
            codes = np.where(column.nulls[sources], len(column.labels), codes)
        return np.take(table[1], codes * ENUM_VARIANTS + variant % ENUM_VARIANTS, axis=0)

    def _write(
        self,
        pick: Pick,
        row: int,
        source: int,
        columns: dict[str, Column],
        layout: encode.LineLayout,
        drift_specs: list[DriftSpec],
    ) -> tuple[DefectKind, str | None, str | None] | None:
        """Write one row's defect; returns what to record (kind, field, change). `row` is the
        line, `source` the same row in `columns`."""
        entity = self.entity
        kind = pick.kind
        if kind == DefectKind.MALFORMED_JSON:
            style = pick.variant % 3
            if style == 0:
                layout.truncate(row, pick.u1, after_field=entity.key)
                return kind, None, None
            if style == 1:
                layout.add_garbage(row, GARBAGE[pick.variant // 3 % len(GARBAGE)])
                return kind, None, None
            bad = INVALID_UTF8[pick.variant // 3 % len(INVALID_UTF8)]
            candidates = [f for f in self.strings if not _is_null(columns[f], source)]
            if candidates:
                name = candidates[pick.variant // 15 % len(candidates)]
                text = columns[name].text(source)
                cut = 1 + int(pick.u1 * (len(text) - 1))
                layout.override_value(name, row, text[:cut] + bad + text[cut:])
                return kind, name, None
            name = self.any_field[pick.variant // 15 % len(self.any_field)] if self.any_field else entity.key
            layout.override_key_bytes(name, row, bad)
            return kind, name, None
        if kind == DefectKind.ORPHAN_FK:
            if not self.references:
                return None
            name = self.references[pick.variant % len(self.references)]
            target = entity.fields[name].references or ""
            value = json.loads(columns[name].text(source)) if not _is_null(columns[name], source) else None
            layout.override_value(name, row, encode.json_scalar(orphan_key(self.scenario, target, value, pick)))
            return kind, name, None
        assert pick.drift is not None
        spec = drift_specs[pick.drift]
        if spec.change == "retype":
            column = columns[spec.field]
            if _is_null(column, source):
                return None  # a null has no other JSON type
            text = retyped_value(entity.fields[spec.field], column, source, spec.to or "string")
            layout.override_value(spec.field, row, text)
            return DefectKind.SCHEMA_DRIFT, spec.field, "retype"
        return None  # other drift is written all at once (`_drift_at_once`)


def bernoulli_rows(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """The rows of range(n) that each turn up independently with probability `rate`, ascending.

    Drawn as the geometric gaps between chosen rows, so a rate of 1% draws about n / 100
    numbers instead of n (a uniform per row took most of planning a batch's defects)."""
    if n <= 0 or rate <= 0:
        return np.zeros(0, dtype=np.int64)
    rate = min(rate, 1.0)
    expected = n * rate
    chosen: list[np.ndarray] = []
    last = -1
    while last < n:
        # Enough gaps to pass n almost always in one draw; the loop covers the rest.
        gaps = rng.geometric(rate, int(expected + 6 * math.sqrt(expected) + 16))
        rows = last + np.cumsum(gaps)
        chosen.append(rows[rows < n])
        last = int(rows[-1])
    return np.concatenate(chosen)


def _is_null(column: Column, row: int) -> bool:
    return bool(column.nulls is not None and column.nulls[row])


def _family(spec: FieldSpec) -> str:
    if spec.type in ("int", "long", "double"):
        return "number"
    if spec.type in ("timestamp", "date"):
        return "timestamp"
    return spec.type


def wrong_values(spec: FieldSpec) -> list[bytes]:
    """JSON texts no cast turns into the field's type."""
    choices = list(_WRONG[_family(spec)])
    if spec.type in ("int", "long"):
        choices.append(b"12.5")  # a fraction is not an integer
    return choices


def _decimals_of(spec: FieldSpec) -> int:
    sample = spec.sample
    decimals = getattr(sample, "decimals", None)
    return 6 if decimals is None else int(decimals)


def out_of_range_numbers(spec: FieldSpec, side: np.ndarray, distance_draw: np.ndarray) -> np.ndarray:
    """JSON numbers of the field's type beyond its range (below or above, by 5-100% of it)."""
    assert spec.range is not None
    low, high = spec.range
    span = max(high - low, 1.0)
    distance: np.ndarray = span * (0.05 + 0.95 * distance_draw)
    below = side < 0.5
    if spec.type in ("int", "long"):
        step = np.maximum(1, distance.astype(np.int64))
        values = np.where(below, math.floor(low) - step, math.ceil(high) + step)
        return encode.encode_int(values)
    places = _decimals_of(spec)
    step_size = 10.0**-places
    # Snap outward at the written precision, so rounding cannot bring a value back in range.
    lower = np.floor((low - np.maximum(distance, step_size)) * 10**places) / 10**places
    upper = np.ceil((high + np.maximum(distance, step_size)) * 10**places) / 10**places
    return encode.encode_fixed(np.where(below, np.minimum(lower, low - step_size), np.maximum(upper, high + step_size)), places)


NULL_WORD = "x"  # what a null value is varied from
ENUM_VARIANTS = 6  # the candidates `outside_enum` tries


def out_of_range_value(spec: FieldSpec, column: Column, row: int, pick: Pick) -> bytes:
    """A string outside the enum (numbers: see `out_of_range_numbers`)."""
    current = json.loads(column.text(row)) if not _is_null(column, row) else NULL_WORD
    return outside_enum(spec, current, pick.variant)


def outside_enum(spec: FieldSpec, current: object, variant: int) -> bytes:
    """JSON text of a variation of `current` that is not in the field's enum."""
    allowed = set(spec.enum or [])
    candidates = [str(current).upper(), f"{current}_v2", "unknown", "", "N/A", f"{current} "]
    for candidate in candidates[variant % ENUM_VARIANTS :] + candidates:
        if candidate not in allowed:
            return encode.json_scalar(candidate)
    return encode.json_scalar("\u2205" + "".join(sorted(allowed)))


# Field types whose retyped value is their own text in quotes, written for all rows at once
# (`DefectInjector._drift_at_once`); `retyped_value` handles the others row by row.
QUOTED_WHEN_RETYPED = ("int", "long", "double", "boolean")


def retyped_value(spec: FieldSpec, column: Column, row: int, to: str) -> bytes:
    """The same value in another JSON type that still converts to the field's type (types
    other than `QUOTED_WHEN_RETYPED`)."""
    assert spec.type not in QUOTED_WHEN_RETYPED
    text = column.text(row)
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

