"""The generator engine: every entity of a scenario, one batch at a time, as bytes + ledger.

Pure computation, no I/O (the writer puts the result on disk). For batch b the engine:

1. plans each entity's rows (baseline, spawn, arrivals), in processing order so dimensions
   come before the rows that point at them;
2. samples every field for *all* planned rows, with one stream per field;
3. drops rows whose unit, parent or referenced row is not clean (never written: their keys
   leave gaps), so clean data has no orphans and no cascade of quarantined parents;
4. picks defects per row (one stream per kind), writes lines as padded byte matrices, adds
   duplicate lines (exact re-emits of clean lines of this or the previous batch) and splits
   the lines into the entity's files, recording every defective line in the ledger.

The state carried from batch to batch is small and derivable: the number of rows each entity
has generated (sequence keys continue from it), the rows of each dimension (with a clean
flag), and a few clean lines of the previous batch to duplicate. `skip_to` rebuilds it for any
batch by replaying counts, which is how a restart resumes without repeating or skipping.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generators import anomalies, encode
from generators.anomalies import Injection
from generators.arrival import ArrivalPlanner, Rows
from generators.checks import check_scenario, field_order
from generators.defects import DefectInjector, Injected
from generators.ledger import Ledger, LedgerBuilder, key_json
from generators.samplers import (
    Column,
    Frame,
    SampleContext,
    added_field_column,
    numeric_column,
    sample_field,
)
from generators.streams import Streams
from medallion.contracts.defects import AnomalySubtype, DefectKind, Fate
from medallion.contracts.layout import landing_file_name
from medallion.contracts.sampler_specs import DegradationSample
from medallion.contracts.scenario import Scenario

BLOCK_ROWS = 2048  # rows assembled at once: ~350 KB of text, hashed and written while in the L2 cache
DUPLICATE_POOL = 64  # clean lines of a batch kept as duplicate sources for the next one
CROSS_BATCH_SHARE = 0.3  # share of duplicates that repeat a line of the previous batch


@dataclass
class Part:
    """One landing file's content: buffers to write in order (numpy arrays or bytes)."""

    path: str  # relative to the data root
    chunks: Iterable[np.ndarray | bytes]
    lines: int


class PartLines:
    """One file's lines, assembled as they are read, a block of lines at a time (duplicates'
    lines placed by the same compiled loop, so each block is one buffer).

    Reading happens in the writer's thread (generators.writer.PipelinedWriter), so assembling
    a block, then hashing and writing it while it is still in the CPU cache, overlaps the
    sampling of the next batch in the engine's thread. Those three steps release the GIL, and
    one buffer per block keeps the hand-overs of the GIL between the threads few.
    """

    def __init__(self, layout: encode.LineLayout, sequence: np.ndarray, repeats: encode.GivenLines) -> None:
        self.layout = layout
        self.sequence = sequence  # row of each line; duplicate i is -(i + 1)
        self.repeats = repeats  # the text of duplicate i

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, self.sequence.size, BLOCK_ROWS):
            yield self.layout.assemble(self.sequence[start : start + BLOCK_ROWS], self.repeats)[0]


@dataclass
class EntityBatch:
    """One entity's share of a batch: its files and its ledger."""

    entity: str
    generated: int
    skipped: int
    lines: int
    clean_records: int
    parts: list[Part]
    defects: Ledger  # one compact JSON object per defective line, in file and line order
    defect_counts: dict[DefectKind, int]
    sequence_end: int
    # Sensor anomalies on readings silver keeps (None: the entity has no faulty sensors).
    anomalies: list[dict[str, Any]] | None = None


@dataclass
class Batch:
    """Everything one batch writes."""

    batch_id: int
    interval: tuple[int, int]
    entities: dict[str, EntityBatch] = field(default_factory=dict)

    @property
    def lines(self) -> int:
        return sum(e.lines for e in self.entities.values())


@dataclass
class _Candidate:
    text: bytes
    key: str  # JSON text
    file: str
    line: int


@dataclass
class _BatchFrame:
    frame: Frame
    times: np.ndarray


@dataclass(frozen=True)
class _Lines:
    """One entity's lines of a batch before duplicates are inserted: their layout, the generated
    row each shows (`kept`), the key column of the generated rows and the defects written."""

    layout: encode.LineLayout
    kept: np.ndarray
    keys: Column
    defects: Injected
    generated: int

    @property
    def n(self) -> int:
        return self.layout.n


@dataclass
class _Duplicates:
    """Duplicate lines: each is inserted after row `positions[i]` and repeats `sources[i]` (a row
    of this batch or a clean line of the previous one); `pool` holds the clean rows the next
    batch may repeat."""

    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sources: list[int | _Candidate] = field(default_factory=list)
    pool: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class _Placement:
    """Where each line lands: the lines, duplicates among them, split evenly into the files."""

    file_names: list[str]
    bounds: np.ndarray  # first line index of each file, and the total
    duplicate_positions: np.ndarray
    total_lines: int

    @classmethod
    def of(cls, name: str, batch_id: int, files_per_batch: int, n_rows: int, duplicate_positions: np.ndarray) -> _Placement:
        total_lines = n_rows + duplicate_positions.size
        parts_count = min(files_per_batch, total_lines)
        bounds = np.asarray([total_lines * i // parts_count for i in range(parts_count + 1)] if parts_count else [0])
        file_names = [f"landing/{name}/{landing_file_name(name, batch_id, p)}" for p in range(parts_count)]
        return cls(file_names, bounds, duplicate_positions, total_lines)

    def locate(self, line_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(part, 1-based line in it) of lines given by their index among all lines."""
        part = np.searchsorted(self.bounds, line_index, side="right") - 1
        return part, line_index - self.bounds[part] + 1

    def of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(part, line) of rows given by their index among the lines before duplicates."""
        return self.locate(rows + np.searchsorted(self.duplicate_positions, rows, side="left"))


def _concat(a: Column, b: Column) -> Column:
    width = max(a.enc.shape[1], b.enc.shape[1])

    def widen(m: np.ndarray) -> np.ndarray:
        if m.shape[1] == width:
            return m
        return np.hstack([m, np.zeros((m.shape[0], width - m.shape[1]), dtype=np.uint8)])

    raw = None if a.raw is None or b.raw is None else np.concatenate([a.raw, b.raw])
    nulls = None
    if a.nulls is not None or b.nulls is not None:
        na = a.nulls if a.nulls is not None else np.zeros(a.enc.shape[0], dtype=bool)
        nb = b.nulls if b.nulls is not None else np.zeros(b.enc.shape[0], dtype=bool)
        nulls = np.concatenate([na, nb])
    return Column(enc=np.vstack([widen(a.enc), widen(b.enc)]), raw=raw, labels=a.labels or b.labels, nulls=nulls)


class Engine:
    """Generates a scenario's batches deterministically from (scenario, seed)."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        check_scenario(scenario)
        self.scenario = scenario
        self.seed = seed
        self.streams = Streams(seed)
        self.clock_start = int(scenario.clock.start.timestamp() * 1000)
        self.interval_ms = int(scenario.clock.interval.total_seconds() * 1000)
        self.planner = ArrivalPlanner(self.streams, self.clock_start)
        self.order = scenario.processing_order
        self.injectors = {name: DefectInjector(scenario, name, self.streams) for name in self.order}
        self.field_orders = {name: field_order(scenario.entities[name]) for name in self.order}
        self.key_of = {name: e.key for name, e in scenario.entities.items()}
        self.next_batch = 0
        self.generated = dict.fromkeys(self.order, 0)
        self.universes: dict[str, Frame] = {
            name: Frame() for name in self.order if scenario.entities[name].role == "dimension"
        }
        self.candidates: dict[str, list[_Candidate]] = {name: [] for name in self.order}
        # Anomalies asked for at run time (POST /api/anomalies); added from the control thread.
        self.injections: list[Injection] = []
        self._injections_lock = threading.Lock()
        self._active: list[Injection] = []
        self._changed: dict[str, list[tuple[Injection, np.ndarray]]] = {}

    def inject(self, subtype: AnomalySubtype, engine: str, sensor: str, duration_ms: int, magnitude: float) -> Injection:
        """Queue an anomaly for the next batch generated (see `anomalies.Injection`).

        Raises:
            ValueError: no fact entity has a degradation sensor of that name, or no clean unit
                of its unit entity has that key (the message says what exists).
        """
        owners = [
            name for name in self.order
            if sensor in self.scenario.entities[name].fields
            and isinstance(self.scenario.entities[name].fields[sensor].sample, DegradationSample)
            and self.scenario.entities[name].arrival is not None
            and self.scenario.entities[name].arrival.per is not None  # type: ignore[union-attr]
        ]
        if not owners:
            sensors = sorted({f for e in self.scenario.entities.values() for f, spec in e.fields.items() if isinstance(spec.sample, DegradationSample)})
            raise ValueError(f"sensor: no sensor {sensor!r} in scenario {self.scenario.name}; sensors: {sensors or 'none'}")
        entity_name = owners[0]
        unit_entity = self.scenario.entities[entity_name].arrival.per  # type: ignore[union-attr]
        assert unit_entity is not None
        universe = self.universes[unit_entity]
        keys = [json.loads(t) for t in key_json(universe.columns[self.key_of[unit_entity]].enc, np.arange(universe.size))] if universe.size else []
        clean = [k for i, k in enumerate(keys) if universe.clean[i]]
        if engine not in clean:
            raise ValueError(f"engine: no {unit_entity} {engine!r} in service; e.g. {clean[:3]} ({len(clean)} in all)")
        with self._injections_lock:
            injection = Injection(
                id=f"api-{len(self.injections) + 1}:{subtype}:{sensor}:{engine}", subtype=subtype, entity=entity_name,
                sensor=sensor, unit=keys.index(engine), unit_key=engine, duration_ms=duration_ms, magnitude=magnitude,
            )
            self.injections.append(injection)
        return injection

    def interval(self, batch: int) -> tuple[int, int]:
        """[start, end) of a batch in epoch milliseconds (live batches may be shorter: `clock.live_interval`)."""
        return self.scenario.clock.batch_interval_ms(batch)

    # --- driving ----------------------------------------------------------------------------

    def generate(self) -> Batch:
        """Generate the next batch and advance."""
        batch = self._run(self.next_batch, light=False)
        self.next_batch += 1
        assert batch is not None
        return batch

    def skip_to(self, batch_id: int) -> None:
        """Advance the state to just before `batch_id` without producing its predecessors' lines
        (counts are replayed; the last one is regenerated in memory for its duplicate sources)."""
        if batch_id < self.next_batch:
            raise ValueError(f"cannot go back from batch {self.next_batch} to {batch_id}")
        while self.next_batch < batch_id - 1:
            self._run(self.next_batch, light=True)
            self.next_batch += 1
        if self.next_batch < batch_id:
            self.generate()

    # --- one batch --------------------------------------------------------------------------

    def _run(self, batch_id: int, light: bool) -> Batch | None:
        interval = self.interval(batch_id)
        if not light:
            with self._injections_lock:
                for injection in self.injections:
                    if injection.start is None:
                        injection.start = interval[0]
                self._active = [i for i in self.injections if i.active(interval)]
        result = Batch(batch_id=batch_id, interval=interval)
        frames: dict[str, _BatchFrame] = {}
        counts: dict[str, int] = {}
        for name in self.order:
            entity = self.scenario.entities[name]
            if light and entity.role == "fact":
                units = self._units(name)
                parents = counts.get(entity.spawn.parent, 0) if entity.spawn else 0
                if entity.spawn and entity.spawn.parent in frames:
                    parents = frames[entity.spawn.parent].frame.size
                n = self.planner.count(name, entity, batch_id, interval, units, parents)
                counts[name] = n
                self.generated[name] += n
                continue
            out = self._entity(name, batch_id, interval, frames)
            counts[name] = out.generated
            result.entities[name] = out
        return None if light else result

    def _units(self, name: str) -> Frame | None:
        arrival = self.scenario.entities[name].arrival
        if arrival is None or arrival.per is None:
            return None
        return self.universes[arrival.per]

    def _entity(self, name: str, batch_id: int, interval: tuple[int, int], frames: dict[str, _BatchFrame]) -> EntityBatch:
        entity = self.scenario.entities[name]
        units = self._units(name)
        parent = frames.get(entity.spawn.parent) if entity.spawn else None
        rows: Rows = self.planner.rows(
            name, entity, batch_id, interval, units, parent.times if parent is not None else None
        )
        n = rows.n
        ctx = SampleContext(
            entity_name=name,
            entity=entity,
            n=n,
            batch=batch_id,
            interval=interval,
            streams=self.streams,
            times=rows.times,
            sequence_offset=self.generated[name],
            universes=self.universes,
            unit_entity=entity.arrival.per if entity.arrival else None,
            unit=rows.unit,
            parent_frame=parent.frame if parent is not None else None,
            parent=rows.parent,
            key_of=self.key_of,
        )
        for field_name in self.field_orders[name]:
            ctx.columns[field_name] = sample_field(field_name, entity.fields[field_name], ctx)
        self._changed[name] = self._apply_injections(name, rows, ctx.columns)
        columns = {f: ctx.columns[f] for f in entity.fields}
        injector = self.injectors[name]
        added = {
            d.field: added_field_column(d.type or "string", ctx, d.field)
            for _, d in injector.active_drift(batch_id)
            if d.change == "add" and d.field not in entity.fields
        }

        keep = np.ones(n, dtype=bool)
        if rows.unit is not None and units is not None:
            keep &= units.clean[rows.unit]
        if parent is not None and rows.parent is not None:
            keep &= parent.frame.clean[rows.parent]
        for field_name, spec in entity.fields.items():
            target_rows = columns[field_name].rows
            if spec.references is not None and target_rows is not None:
                target = self.universes[spec.references]
                valid = target_rows >= 0
                keep &= valid & target.clean[np.where(valid, target_rows, 0)]
        kept = np.flatnonzero(keep)
        plan = injector.plan(batch_id, n)

        # Lines show the kept rows: the layout reads the columns through `kept` (no copies).
        layout = encode.LineLayout(kept.size, None if kept.size == n else kept)
        for field_name in entity.fields:
            layout.add_field(field_name, columns[field_name].enc)
        injected = injector.apply(plan, kept, columns, layout, interval, added)

        clean = keep.copy()
        for group in injected.groups:
            if group.fate != Fate.KEEP:
                clean[kept[group.lines]] = False
        frame = Frame(columns=columns, clean=clean)
        frames[name] = _BatchFrame(frame=frame, times=rows.times)
        if name in self.universes:
            self._grow(name, frame)
        self.generated[name] += n
        rendered = self._render(name, batch_id, _Lines(layout, kept, columns[entity.key], injected, n))
        rendered.anomalies = self._anomalies(name, rows, columns, kept, injected)
        return rendered

    def _apply_injections(self, name: str, rows: Rows, columns: dict[str, Column]) -> list[tuple[Injection, np.ndarray]]:
        """Put the active run-time anomalies on this entity's sampled values; the rows each changed."""
        changed = []
        for injection in self._active:
            if injection.entity != name or rows.unit is None or not rows.n:
                continue
            column = columns[injection.sensor]
            spec = self.scenario.entities[name].fields[injection.sensor]
            sample = spec.sample
            assert column.raw is not None and isinstance(sample, DegradationSample)
            values = column.raw.astype(np.float64)
            hit = injection.apply(values, rows.times, rows.unit)
            if hit.size:
                encoded = numeric_column(spec, values, sample.clip, sample.decimals)
                encoded.faults = column.faults
                columns[injection.sensor] = encoded
                changed.append((injection, hit))
        return changed

    def _anomalies(self, name: str, rows: Rows, columns: dict[str, Column], kept: np.ndarray,
                   injected: Injected) -> list[dict[str, Any]] | None:
        """The manifest's anomaly entries: faults on the rows whose lines reach silver."""
        faulty = {f: c for f, c in columns.items() if c.faults is not None}
        if not faulty:
            return None
        entity = self.scenario.entities[name]
        refused = np.zeros(kept.size, dtype=bool)
        for group in injected.groups:
            if group.fate != Fate.KEEP:
                refused[group.lines] = True
        reach = kept[~refused]
        any_fault = np.zeros(rows.n, dtype=bool)
        for column in faulty.values():
            assert column.faults is not None
            any_fault |= column.faults.spike | column.faults.stuck | column.faults.drift
        for _, hit in self._changed.get(name, []):
            any_fault[hit] = True
        reach = reach[any_fault[reach]]
        if not reach.size or rows.unit is None or entity.arrival is None or entity.arrival.per is None:
            return []
        unit_ids = rows.unit[reach]
        unit_entity = entity.arrival.per
        units = [json.loads(t) for t in key_json(self.universes[unit_entity].columns[self.key_of[unit_entity]].enc, unit_ids)]
        keys = [json.loads(t) for t in key_json(columns[entity.key].enc, reach)]
        times = rows.times[reach]
        out: list[dict[str, Any]] = []
        for field_name, column in faulty.items():
            assert column.faults is not None
            out += anomalies.sensor_entries(field_name, column.faults, column, reach, times, units, unit_ids, keys)
        for injection, hit in self._changed.get(name, []):
            raw = columns[injection.sensor].raw
            assert raw is not None
            positions = np.flatnonzero(np.isin(reach, hit))
            if not positions.size and injection.subtype == AnomalySubtype.SPIKE:
                injection.spent = False  # its line is quarantined: the spike goes on the next reading
            out += injection.entries(positions, times, raw[reach], keys)
        return anomalies.sort_entries(out)

    def _grow(self, name: str, frame: Frame) -> None:
        universe = self.universes[name]
        if frame.size == 0:
            return
        if universe.size == 0:
            self.universes[name] = Frame(columns=dict(frame.columns), clean=frame.clean.copy())
            return
        universe.columns = {f: _concat(universe.columns[f], frame.columns[f]) for f in universe.columns}
        universe.clean = np.concatenate([universe.clean, frame.clean])

    # --- lines, files and ledger ------------------------------------------------------------

    def _render(self, name: str, batch_id: int, lines: _Lines) -> EntityBatch:
        """Place duplicates among the lines, split them into files, record the ledger."""
        entity = self.scenario.entities[name]
        duplicates = self._duplicates(name, batch_id, lines.defects.mask(lines.n))
        placement = _Placement.of(name, batch_id, entity.files_per_batch, lines.n, duplicates.positions)
        builder = LedgerBuilder(placement.file_names, lines.keys.enc, entity.fields[entity.key].type == "string")
        counts, quarantined = _record_defects(builder, lines, placement)
        counts[DefectKind.DUPLICATE] += _record_duplicates(builder, lines, duplicates, placement)
        # Lines that a duplicate repeats (in this batch or the next) are rendered now; the
        # others when the writer reads the parts (see PartLines), in the writer's thread.
        texts = _texts_to_repeat(lines.layout, duplicates)
        self.candidates[name] = _next_candidates(lines, duplicates.pool, placement, texts)
        return EntityBatch(
            entity=name,
            generated=lines.generated,
            skipped=lines.generated - lines.n,
            lines=placement.total_lines,
            clean_records=lines.n - quarantined,
            parts=_parts(lines.layout, duplicates, placement, texts),
            defects=builder.build(),
            defect_counts=counts,
            sequence_end=self.generated[name],
        )

    def _duplicates(self, name: str, batch_id: int, defective: np.ndarray) -> _Duplicates:
        """Extra lines repeating clean lines of this batch (earlier ones) or the last, and the
        clean lines the next batch may repeat."""
        rate = self.scenario.entities[name].defects.duplicate
        n_rows = defective.size
        no_defect_rows = np.flatnonzero(~defective)
        previous = self.candidates[name]
        duplicates = _Duplicates()
        if rate > 0 and n_rows > 0:
            rng = self.streams.rng(name, f"defect:{DefectKind.DUPLICATE}", batch_id)
            count = int(rng.binomial(n_rows, rate))
            positions = np.sort(rng.integers(0, n_rows, count))
            pick_previous = rng.random(count) < CROSS_BATCH_SHARE
            which = rng.random(count)
            eligible_upto = np.cumsum(~defective)
            kept_positions = []
            for i, position in enumerate(positions.tolist()):
                available = int(eligible_upto[position])
                if previous and (pick_previous[i] or available == 0):
                    duplicates.sources.append(previous[int(which[i] * len(previous))])
                elif available:
                    duplicates.sources.append(int(no_defect_rows[int(which[i] * available)]))
                else:
                    continue
                kept_positions.append(position)
            duplicates.positions = np.asarray(kept_positions, dtype=np.int64)
        if rate > 0 and no_defect_rows.size:
            rng = self.streams.rng(name, "duplicate-pool", batch_id)
            duplicates.pool = np.sort(rng.choice(no_defect_rows, size=min(DUPLICATE_POOL, no_defect_rows.size), replace=False))
        return duplicates


def _record_defects(builder: LedgerBuilder, lines: _Lines, placement: _Placement) -> tuple[dict[DefectKind, int], int]:
    """Ledger entries of the defects written on the lines; their counts by kind and how many
    lines the pipeline quarantines."""
    counts = dict.fromkeys(DefectKind, 0)
    quarantined = 0
    for group in lines.defects.groups:
        part, line = placement.of_rows(group.lines)
        builder.add_defects(part, line, group.kind, lines.kept[group.lines], group.field, group.change)
        counts[group.kind] += int(group.lines.size)
        if group.fate != Fate.KEEP:
            quarantined += int(group.lines.size)
    return counts, quarantined


def _record_duplicates(builder: LedgerBuilder, lines: _Lines, duplicates: _Duplicates, placement: _Placement) -> int:
    """Ledger entries of the duplicate lines, each naming the line it repeats; their count."""
    n_dups = duplicates.positions.size
    if not n_dups:
        return 0
    dup_part, dup_line = placement.locate(duplicates.positions + 1 + np.arange(n_dups))
    is_current = np.array([isinstance(s, int) for s in duplicates.sources], dtype=bool)
    if is_current.any():
        current = np.asarray([s for s in duplicates.sources if isinstance(s, int)], dtype=np.int64)
        source_part, source_line = placement.of_rows(current)
        builder.add_repeats(dup_part[is_current], dup_line[is_current], lines.kept[current], source_part, source_line)
    if not is_current.all():
        earlier = [s for s in duplicates.sources if isinstance(s, _Candidate)]
        builder.add_earlier_repeats(
            dup_part[~is_current], dup_line[~is_current], [c.key for c in earlier], [f"{c.file}:{c.line}" for c in earlier]
        )
    return int(n_dups)


def _texts_to_repeat(layout: encode.LineLayout, duplicates: _Duplicates) -> dict[int, bytes]:
    """The text of every line of this batch a duplicate repeats, now or in the next batch."""
    layout.prepare()
    needed = sorted({int(r) for r in duplicates.pool.tolist()} | {s for s in duplicates.sources if isinstance(s, int)})
    return dict(zip(needed, layout.lines(needed), strict=True))


def _parts(layout: encode.LineLayout, duplicates: _Duplicates, placement: _Placement, texts: dict[int, bytes]) -> list[Part]:
    """The files' contents: each a run of the lines in order, duplicates in their places."""
    n_rows, n_dups = layout.n, duplicates.positions.size
    repeats = encode.GivenLines.of([s.text if isinstance(s, _Candidate) else texts[s] for s in duplicates.sources])
    sequence = np.insert(np.arange(n_rows, dtype=np.int64), duplicates.positions + 1, -(np.arange(n_dups) + 1))
    bounds = placement.bounds
    return [
        Part(path=path, chunks=PartLines(layout, sequence[bounds[p] : bounds[p + 1]], repeats), lines=int(bounds[p + 1] - bounds[p]))
        for p, path in enumerate(placement.file_names)
    ]


def _next_candidates(lines: _Lines, pool: np.ndarray, placement: _Placement, texts: dict[int, bytes]) -> list[_Candidate]:
    """Clean lines of this batch that the next batch may repeat. Only the immediately previous
    batch is a source, so a resumed run (which rebuilds just that batch) repeats exactly what
    an uninterrupted run would."""
    if not pool.size:
        return []
    pool_part, pool_line = placement.of_rows(pool)
    pool_keys = key_json(lines.keys.enc, lines.kept[pool])
    return [
        _Candidate(texts[int(row)], pool_keys[i], placement.file_names[pool_part[i]], int(pool_line[i]))
        for i, row in enumerate(pool.tolist())
    ]
