"""Value samplers: one vectorised draw per field per batch, encoded to JSON text at once.

`sample_field` turns a field's `sample:` spec into a `Column` for all n rows of a batch: the
raw values (numbers, epoch milliseconds, category codes) that later fields and defects need,
and the JSON text matrix the line builder lays out. Pure: no I/O, one named random stream per
field, so adding a field or a defect never changes another field's values.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generators import encode, kernels, vocab
from generators.streams import Streams, hash_uniform
from medallion.contracts.sampler_specs import (
    BooleanSample,
    CategoricalSample,
    ConstantSample,
    DegradationSample,
    DerivedSample,
    EmailSample,
    IntervalTimeSample,
    LognormalSample,
    MaintenanceWindow,
    NormalSample,
    ParentSample,
    PoissonSample,
    PricedSample,
    ProductSample,
    ReferenceSample,
    RemainingLifeSample,
    SequenceSample,
    ShapedSample,
    UniformSample,
    UnitSample,
    UpstreamSample,
    UuidSample,
    VocabularySample,
)
from medallion.contracts.scenario import Entity, FieldSpec

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
DEFAULT_DECIMALS = 6  # doubles without `decimals` are written with up to six places
_NULL = np.frombuffer(b"null", dtype=np.uint8)
_BOOLEANS = encode.bytes_table([b"false", b"true"])


@dataclass
class Column:
    """One field's values for the rows of a batch.

    `enc` is the JSON text per row (padded uint8 matrix); `raw` the numeric value (float64,
    int64, epoch ms for timestamps, bool) or the code into `labels` for words; `nulls` marks
    rows written as JSON null.
    """

    enc: np.ndarray
    raw: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    nulls: np.ndarray | None = None
    rows: np.ndarray | None = None  # for references: the referenced row, -1 when none exists
    faults: SensorFaults | None = None  # degradation sensors: which rows carry which anomaly

    def take(self, index: np.ndarray) -> Column:
        """The rows at `index`, in that order."""
        return Column(
            enc=np.take(self.enc, index, axis=0),
            raw=None if self.raw is None else np.take(self.raw, index, axis=0),
            labels=self.labels,
            nulls=None if self.nulls is None else np.take(self.nulls, index),
        )

    def text(self, row: int) -> bytes:
        """The JSON text of one row."""
        return encode.row_bytes(self.enc, row)

    def strings(self) -> list[str] | None:
        """Per-row labels when the column holds words (None otherwise)."""
        if self.labels is None or self.raw is None:
            return None
        return [self.labels[int(c)] for c in self.raw]


@dataclass
class SensorFaults:
    """The anomalies a degradation sampler put on its rows (for the manifest's `anomalies`):
    per row, whether it is spiked (and by how much, as written), stuck, or drifting (and by
    how much). Only recorded; the values are the column's."""

    spike: np.ndarray
    spike_change: np.ndarray
    stuck: np.ndarray
    drift: np.ndarray
    drift_offset: np.ndarray


@dataclass
class Frame:
    """Columns of one entity's rows (a batch, or the growing universe of a dimension)."""

    columns: dict[str, Column] = field(default_factory=dict)
    clean: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def size(self) -> int:
        return int(self.clean.size)


@dataclass
class SampleContext:
    """Everything a sampler may read for one entity in one batch."""

    entity_name: str
    entity: Entity
    n: int
    batch: int
    interval: tuple[int, int]  # [start, end) in epoch ms
    streams: Streams
    times: np.ndarray  # arrival instant of each row, epoch ms
    sequence_offset: int  # rows of this entity generated before this batch
    universes: dict[str, Frame]
    unit_entity: str | None = None
    unit: np.ndarray | None = None  # row index into the unit entity's universe
    parent_frame: Frame | None = None
    parent: np.ndarray | None = None  # row index into the parent entity's batch frame
    columns: dict[str, Column] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)  # entity -> key field
    _wear: np.ndarray | None = None

    def rng(self, purpose: str) -> np.random.Generator:
        return self.streams.rng(self.entity_name, purpose, self.batch)

    def unit_column(self, name: str) -> Column:
        if self.unit is None or self.unit_entity is None:
            raise ValueError(f"{self.entity_name}: sampler needs arrival.per (a unit entity)")
        return self.universes[self.unit_entity].columns[name].take(self.unit)

    def wear(self) -> np.ndarray:
        """Wear of each row's unit at the row's time (0 new, 1 failed), per `Arrival.lifetime`."""
        if self._wear is None:
            life = self.entity.arrival.lifetime if self.entity.arrival else None
            if life is None:
                raise ValueError(f"{self.entity_name}: degradation needs arrival.lifetime")
            self._wear = wear_at(self, self.times)
        return self._wear


def wear_at(ctx: SampleContext, times: np.ndarray) -> np.ndarray:
    """Wear of each row's unit at the given instants."""
    life = ctx.entity.arrival.lifetime  # type: ignore[union-attr]
    assert life is not None
    start = ctx.unit_column(life.start).raw
    hours = ctx.unit_column(life.life_hours).raw
    initial = ctx.unit_column(life.wear).raw if life.wear else 0.0
    assert start is not None and hours is not None
    age_hours = (times - start) / MS_PER_HOUR
    return np.asarray(initial + age_hours / np.maximum(hours, 1e-9), dtype=np.float64)


# --- numeric helpers ------------------------------------------------------------------------


def bounds(spec: FieldSpec, clip: tuple[float, float] | None) -> tuple[float, float]:
    """The interval clean values must stay in: the sampler's clip within the field's range."""
    low, high = -math.inf, math.inf
    for pair in (clip, spec.range):
        if pair is not None:
            low, high = max(low, pair[0]), min(high, pair[1])
    return low, high


def numeric_column(spec: FieldSpec, values: np.ndarray, clip: tuple[float, float] | None, decimals: int | None) -> Column:
    """Clip, round and encode numbers so clean values never leave the field's range."""
    low, high = bounds(spec, clip)
    if spec.type in ("int", "long"):
        lo = -math.inf if math.isinf(low) else math.ceil(low)
        hi = math.inf if math.isinf(high) else math.floor(high)
        ints = np.clip(np.rint(values), lo, hi).astype(np.int64)
        return Column(enc=encode.encode_int(ints), raw=ints)
    places = DEFAULT_DECIMALS if decimals is None else decimals
    scale = 10.0**places
    # Rounded once, as integers in units of the last written decimal; the bounds are snapped
    # inward to that precision, so rounding cannot step outside them.
    lo = -math.inf if math.isinf(low) else math.ceil(low * scale - 1e-6)
    hi = math.inf if math.isinf(high) else math.floor(high * scale + 1e-6)
    ints = kernels.scaled_integers(np.ascontiguousarray(values, dtype=np.float64), scale, lo, hi)
    return Column(enc=encode.encode_scaled(ints, places), raw=ints / scale)


def _decimals(sample: Any) -> int | None:
    return getattr(sample, "decimals", None)


def _clip(sample: Any) -> tuple[float, float] | None:
    return getattr(sample, "clip", None)


def categorical_codes(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """`rng.choice(len(p), size=n, p=p)`, the same codes from the same draws: one uniform per
    row placed among the cumulative weights. With few categories, by one comparison per
    boundary, cheaper than choice's binary search."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    uniforms = rng.random(n)
    if cdf.size > 8:
        return cdf.searchsorted(uniforms, side="right").astype(np.intp)
    codes = np.zeros(n, dtype=np.intp)
    for boundary in cdf[:-1]:
        codes += uniforms >= boundary
    return codes


def zipf_indices(rng: np.random.Generator, size: int, count: int, a: float) -> np.ndarray:
    """Ranks 0..size-1 with P(k) proportional to 1/(k+1)**a (bounded zipf)."""
    weights = 1.0 / np.arange(1, size + 1, dtype=np.float64) ** a
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, rng.random(count), side="right"), size - 1)


def _hours_and_weekdays(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    days, in_day = np.divmod(times, MS_PER_DAY)
    # 1970-01-01 was a Thursday: weekday (Monday = 0) is (days + 3) mod 7.
    return in_day // MS_PER_HOUR, (days + 3) % 7


def shape_multipliers(hour_of_day: list[float] | None, day_of_week: list[float] | None, times: np.ndarray) -> np.ndarray:
    """hour_of_day[h] x day_of_week[d] at each instant (1.0 where a list is absent)."""
    hours, weekdays = _hours_and_weekdays(np.asarray(times, dtype=np.int64))
    result = np.ones(np.asarray(times).shape, dtype=np.float64)
    if hour_of_day is not None:
        result *= np.asarray(hour_of_day, dtype=np.float64)[hours]
    if day_of_week is not None:
        result *= np.asarray(day_of_week, dtype=np.float64)[weekdays]
    return result


def maintenance_multipliers(windows: list[MaintenanceWindow], times: np.ndarray) -> np.ndarray:
    """Each window's factor at the instants inside it (1.0 elsewhere); windows may wrap past
    Sunday midnight into Monday."""
    result = np.ones(np.asarray(times).shape, dtype=np.float64)
    if not windows:
        return result
    hours, weekdays = _hours_and_weekdays(np.asarray(times, dtype=np.int64))
    hour_of_week = weekdays * 24 + hours
    for window in windows:
        offset = (hour_of_week - (window.weekday * 24 + window.start_hour)) % (7 * 24)
        result = np.where(offset < window.hours, result * window.factor, result)
    return result


# --- samplers -------------------------------------------------------------------------------


def sample_field(name: str, spec: FieldSpec, ctx: SampleContext) -> Column:
    """All n rows of one field, nulls (`null_share`) included."""
    column = _sample(name, spec, ctx)
    if spec.null_share > 0 and ctx.n:
        nulls = ctx.rng(f"null:{name}").random(ctx.n) < spec.null_share
        column = with_nulls(column, nulls)
    return column


def with_nulls(column: Column, nulls: np.ndarray) -> Column:
    """The column with the masked rows written as JSON null."""
    if not nulls.any():
        return column
    enc = column.enc
    if enc.shape[1] < 4:
        enc = np.hstack([enc, np.zeros((enc.shape[0], 4 - enc.shape[1]), dtype=np.uint8)])
    else:
        enc = enc.copy()
    enc[nulls] = encode.PAD
    enc[nulls, :4] = _NULL
    merged = nulls if column.nulls is None else (column.nulls | nulls)
    return Column(enc=enc, raw=column.raw, labels=column.labels, nulls=merged)


def _sample(name: str, spec: FieldSpec, ctx: SampleContext) -> Column:
    sample = spec.sample
    n = ctx.n
    if sample is None:
        return null_column(n)
    if isinstance(sample, SequenceSample):
        numbers = sample.start + ctx.sequence_offset + np.arange(n, dtype=np.int64)
        if spec.type == "string":
            return Column(enc=encode.encode_sequence(numbers, sample.prefix, sample.width), raw=numbers)
        return Column(enc=encode.encode_int(numbers), raw=numbers)
    if isinstance(sample, UuidSample):
        raw = encode.uuid_bytes(ctx.rng(f"field:{name}").integers(0, 256, (n, 16), dtype=np.uint8))
        return Column(enc=encode.encode_uuid(raw))
    if isinstance(sample, IntervalTimeSample):
        return time_column(spec, ctx.times)
    if isinstance(sample, ConstantSample):
        if spec.type in ("int", "long", "double"):
            return numeric_column(spec, np.full(n, float(sample.value)), None, None)
        text = encode.string_table([sample.value]) if isinstance(sample.value, str) else encode.bytes_table(
            [encode.json_scalar(sample.value)]
        )
        return Column(enc=np.repeat(text, n, axis=0))
    if isinstance(sample, CategoricalSample):
        labels = tuple(sample.weights)
        p = np.asarray(list(sample.weights.values()), dtype=np.float64)
        codes = categorical_codes(ctx.rng(f"field:{name}"), p / p.sum(), n)
        return word_column(labels, codes)
    if isinstance(sample, VocabularySample):
        words = vocab.load(sample.vocabulary)
        rng = ctx.rng(f"field:{name}")
        if sample.skew == "zipf":
            codes = zipf_indices(rng, len(words), n, sample.zipf_a)
        else:
            codes = rng.integers(0, len(words), n)
        return word_column(words, codes)
    if isinstance(sample, BooleanSample):
        flags = ctx.rng(f"field:{name}").random(n) < sample.p
        return Column(enc=encode.encode_codes(flags.astype(np.intp), _BOOLEANS), raw=flags)
    if isinstance(sample, (UniformSample, NormalSample, LognormalSample, PoissonSample)):
        rng = ctx.rng(f"field:{name}")
        values: np.ndarray
        if isinstance(sample, UniformSample):
            if spec.type in ("int", "long"):
                values = rng.integers(math.ceil(sample.low), math.ceil(sample.high), n).astype(np.float64)
            else:
                values = rng.uniform(sample.low, sample.high, n)
        elif isinstance(sample, NormalSample):
            values = rng.normal(sample.mean, sample.std, n)
        elif isinstance(sample, LognormalSample):
            values = rng.lognormal(sample.mean, sample.sigma, n)
        else:
            values = rng.poisson(sample.lam, n).astype(np.float64)
        return numeric_column(spec, values, _clip(sample), _decimals(sample))
    if isinstance(sample, ReferenceSample):
        return reference_column(name, spec, sample, ctx)
    if isinstance(sample, UnitSample):
        target = sample.field or ctx.key_of[ctx.unit_entity or ""]
        return ctx.unit_column(target)
    if isinstance(sample, ParentSample):
        if ctx.parent is None or ctx.parent_frame is None:
            raise ValueError(f"{ctx.entity_name}.{name}: sampler 'parent' needs spawn")
        parent_entity = ctx.entity.spawn.parent if ctx.entity.spawn else ""
        target = sample.field or ctx.key_of[parent_entity]
        return ctx.parent_frame.columns[target].take(ctx.parent)
    if isinstance(sample, DerivedSample):
        source = ctx.columns[sample.source].raw
        assert source is not None
        rng = ctx.rng(f"field:{name}")
        base = sample.intercept + sample.slope * np.power(np.maximum(source.astype(np.float64), 0.0), sample.power)
        if sample.noise_sigma > 0:
            base = base * np.exp(rng.normal(0.0, sample.noise_sigma, n))
        if sample.noise_std > 0:
            base = base + rng.normal(0.0, sample.noise_std, n)
        return numeric_column(spec, base, sample.clip, sample.decimals)
    if isinstance(sample, ProductSample):
        result = np.ones(n, dtype=np.float64)
        for factor in sample.factors:
            factor_values = ctx.columns[factor].raw
            assert factor_values is not None
            result = result * factor_values.astype(np.float64)
        return numeric_column(spec, result, None, sample.decimals)
    if isinstance(sample, EmailSample):
        return email_column(name, sample, ctx)
    if isinstance(sample, ShapedSample):
        return shaped_column(name, spec, sample, ctx)
    if isinstance(sample, DegradationSample):
        return degradation_column(name, spec, sample, ctx)
    if isinstance(sample, PricedSample):
        return priced_column(name, spec, sample, ctx)
    if isinstance(sample, UpstreamSample):
        return upstream_column(name, spec, sample, ctx)
    if isinstance(sample, RemainingLifeSample):
        life = ctx.entity.arrival.lifetime  # type: ignore[union-attr]
        assert life is not None
        hours = ctx.unit_column(life.life_hours).raw
        assert hours is not None
        remaining = np.maximum(1.0 - ctx.wear(), 0.0) * hours
        return numeric_column(spec, remaining, None, sample.decimals)
    raise ValueError(f"{ctx.entity_name}.{name}: unsupported sampler {sample!r}")


def email_column(name: str, sample: EmailSample, ctx: SampleContext) -> Column:
    """`first.last.<row number>@domain`: the source words as an ASCII local part, numbered by
    the row's position in the entity's sequence so no two rows share an address."""
    words = ctx.columns[sample.source].strings() or [""] * ctx.n
    weights = np.asarray(list(sample.domains.values()), dtype=np.float64)
    domains = list(sample.domains)
    codes = categorical_codes(ctx.rng(f"field:{name}"), weights / weights.sum(), ctx.n)
    numbers = ctx.sequence_offset + 1 + np.arange(ctx.n, dtype=np.int64)
    addresses = [
        f"{_local_part(word)}.{number}@{domains[code]}" for word, number, code in zip(words, numbers, codes, strict=True)
    ]
    return Column(enc=encode.string_table(addresses), raw=np.arange(ctx.n, dtype=np.int64), labels=tuple(addresses))


_NOT_LOCAL = re.compile(r"[^a-z0-9]+")


def _local_part(word: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
    return _NOT_LOCAL.sub(".", ascii_text).strip(".") or "user"


def word_column(labels: tuple[str, ...], codes: np.ndarray) -> Column:
    """Strings picked from `labels` by code."""
    return Column(enc=encode.encode_codes(codes, _string_table(labels)), raw=np.asarray(codes, dtype=np.int64), labels=labels)


_TABLES: dict[tuple[str, ...], np.ndarray] = {}


def _string_table(labels: tuple[str, ...]) -> np.ndarray:
    table = _TABLES.get(labels)
    if table is None:
        table = _TABLES[labels] = encode.string_table(labels)
    return table


def time_column(spec: FieldSpec, times: np.ndarray) -> Column:
    """Instants as timestamps, or their UTC dates for date fields."""
    times = np.asarray(times, dtype=np.int64)
    if spec.type == "date":
        return Column(enc=encode.encode_date(times // MS_PER_DAY), raw=times)
    return Column(enc=encode.encode_timestamp(times), raw=times)


def reference_column(name: str, spec: FieldSpec, sample: ReferenceSample, ctx: SampleContext) -> Column:
    """Keys of the referenced dimension, uniform or zipf-skewed over its rows so far."""
    target = spec.references or ""
    universe = ctx.universes[target]
    rng = ctx.rng(f"field:{name}")
    size = universe.size
    if size == 0:
        # Nothing to point at yet: the engine drops every row (rows = -1).
        enc = np.zeros((ctx.n, 4), dtype=np.uint8)
        enc[:, :4] = _NULL
        return Column(enc=enc, rows=np.full(ctx.n, -1, dtype=np.int64))
    if sample.skew == "zipf":
        index = zipf_indices(rng, size, ctx.n, sample.zipf_a)
    else:
        index = rng.integers(0, size, ctx.n)
    column = universe.columns[ctx.key_of[target]].take(index)
    column.rows = index
    return column


def shaped_column(name: str, spec: FieldSpec, sample: ShapedSample, ctx: SampleContext) -> Column:
    """base + scale x shape(time) + noise, the shape picked per row by `by`."""
    times = ctx.times
    multiplier = np.ones(ctx.n, dtype=np.float64)
    if sample.by is None:
        only = next(iter(sample.shapes.values()))
        multiplier = shape_multipliers(only.hour_of_day, only.day_of_week, times)
    else:
        labels = ctx.columns[sample.by].strings() or []
        names = np.asarray(labels, dtype=object)
        for shape_name, shape in sample.shapes.items():
            rows = np.flatnonzero(names == shape_name)
            if rows.size:
                multiplier[rows] = shape_multipliers(shape.hour_of_day, shape.day_of_week, times[rows])
    if sample.maintenance:
        multiplier *= maintenance_multipliers(sample.maintenance, times)
    values = sample.base + sample.scale * multiplier
    if sample.noise_std > 0:
        values = values + ctx.rng(f"field:{name}").normal(0.0, sample.noise_std, ctx.n)
    return numeric_column(spec, values, sample.clip, sample.decimals)


def priced_column(name: str, spec: FieldSpec, sample: PricedSample, ctx: SampleContext) -> Column:
    """(base + times x the row's prices from the tables) x lognormal noise (see the model)."""
    values = np.zeros(ctx.n, dtype=np.float64)
    for by, table in sample.prices.items():
        labels = ctx.columns[by].labels or ()
        codes = ctx.columns[by].raw
        assert codes is not None
        # Unlisted categories cost nothing extra (e.g. an open-source engine's licence).
        price_of_code = np.asarray([table.get(label, 0.0) for label in labels] or [0.0], dtype=np.float64)
        values += price_of_code[np.asarray(codes, dtype=np.int64)]
    if sample.times is not None:
        times = ctx.columns[sample.times].raw
        assert times is not None
        values *= np.asarray(times, dtype=np.float64)
    values += sample.base
    if sample.noise_sigma > 0:
        values *= np.exp(ctx.rng(f"field:{name}").normal(0.0, sample.noise_sigma, ctx.n))
    return numeric_column(spec, values, None, sample.decimals)


def upstream_column(name: str, spec: FieldSpec, sample: UpstreamSample, ctx: SampleContext) -> Column:
    """Keys of rows older than the row `of` points at: edges from newer to older rows only."""
    target = spec.references or ""
    universe = ctx.universes[target]
    downstream = ctx.columns[sample.of].rows
    assert downstream is not None
    rng = ctx.rng(f"field:{name}")
    limit = np.maximum(downstream, 0)  # rows 0 .. limit-1 are older than the downstream row
    if sample.skew == "zipf" and universe.size:
        cumulative = np.cumsum(1.0 / np.arange(1, universe.size + 1, dtype=np.float64) ** sample.zipf_a)
        ceiling = np.where(limit > 0, cumulative[np.maximum(limit - 1, 0)], 0.0)
        index = np.searchsorted(cumulative, rng.random(ctx.n) * ceiling, side="right")
    else:
        index = np.floor(rng.random(ctx.n) * limit).astype(np.int64)
    index = np.where(limit > 0, np.minimum(index, limit - 1), -1).astype(np.int64)
    if universe.size == 0:
        enc = np.zeros((ctx.n, 4), dtype=np.uint8)
        enc[:, :4] = _NULL
        return Column(enc=enc, rows=np.full(ctx.n, -1, dtype=np.int64))
    # Rows without an upstream (-1) are dropped by the engine; their text is never written.
    column = universe.columns[ctx.key_of[target]].take(np.maximum(index, 0))
    column.rows = index
    return column


def degradation_column(name: str, spec: FieldSpec, sample: DegradationSample, ctx: SampleContext) -> Column:
    """A wearing sensor with spikes, stuck periods and calibration drift (see the model)."""
    n = ctx.n
    wear = np.clip(ctx.wear(), 0.0, 1.0)
    clean = sample.base + sample.amplitude * wear**sample.exponent
    rng = ctx.rng(f"field:{name}")
    values = clean + (rng.normal(0.0, sample.noise_std, n) if sample.noise_std > 0 else 0.0)
    unit = ctx.unit if ctx.unit is not None else np.zeros(n, dtype=np.int64)
    none = np.zeros(n, dtype=bool)
    drifting, drift_offset, stuck, spikes = none, np.zeros(n), none, none
    if sample.drift_share > 0:
        drifting = hash_uniform(unit, ctx.streams.salt(ctx.entity_name, f"drift:{name}")) < sample.drift_share
        life = ctx.entity.arrival.lifetime  # type: ignore[union-attr]
        assert life is not None
        start = ctx.unit_column(life.start).raw
        assert start is not None
        days = np.maximum(ctx.times - start, 0) / MS_PER_DAY
        drift_offset = np.where(drifting, sample.drift_per_day * days, 0.0)
        values = values + drift_offset
    if sample.stuck_share > 0:
        day = ctx.times // MS_PER_DAY
        keys = unit * 1_000_003 + day
        stuck = hash_uniform(keys, ctx.streams.salt(ctx.entity_name, f"stuck:{name}")) < sample.stuck_share
        if stuck.any():
            frozen = np.clip(wear_at(ctx, day * MS_PER_DAY), 0.0, 1.0)
            values = np.where(stuck, sample.base + sample.amplitude * frozen**sample.exponent, values)
    unspiked = values
    if sample.spike_share > 0:
        spikes = rng.random(n) < sample.spike_share
        signs = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        values = values + np.where(spikes, signs * sample.spike_size, 0.0)
    column = numeric_column(spec, values, sample.clip, sample.decimals)
    # What a spike changed as written (clipping to the range may shrink it, even to nothing).
    spike_change = np.zeros(n)
    if spikes.any():
        assert column.raw is not None
        before = numeric_column(spec, unspiked[spikes], sample.clip, sample.decimals).raw
        assert before is not None
        spike_change[spikes] = column.raw[spikes] - before
    column.faults = SensorFaults(spikes & (spike_change != 0), spike_change, stuck, drifting & (drift_offset > 0), drift_offset)
    return column


def null_column(n: int) -> Column:
    """A field without `sample:`: JSON null in all `n` rows (optional fields a scenario leaves empty)."""
    enc = np.zeros((n, 4), dtype=np.uint8)
    enc[:, :4] = _NULL
    return Column(enc=enc, nulls=np.ones(n, dtype=bool))


def added_field_column(type_name: str, ctx: SampleContext, name: str) -> Column:
    """Values for a field a schema-drift `add` introduces without declaring it."""
    rng = ctx.rng(f"added:{name}")
    n = ctx.n
    if type_name in ("int", "long"):
        ints = rng.integers(0, 1000, n)
        return Column(enc=encode.encode_int(ints), raw=ints)
    if type_name == "double":
        values = np.round(rng.uniform(0, 100, n), 2)
        return Column(enc=encode.encode_fixed(values, 2), raw=values)
    if type_name == "boolean":
        flags = rng.random(n) < 0.5
        return Column(enc=encode.encode_codes(flags.astype(np.intp), _BOOLEANS), raw=flags)
    if type_name in ("timestamp", "date"):
        return time_column(FieldSpec(type=type_name), ctx.times)  # type: ignore[arg-type]
    labels = ("alpha", "beta", "gamma")
    return word_column(labels, rng.integers(0, len(labels), n))
