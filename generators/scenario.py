"""Scenario models: the YAML contract both the generator and the Spark jobs are driven by.

A scenario file declares entities (schema, arrival process, defects), silver expectations, gold
aggregates, export targets and pipeline settings. It is validated by pydantic v2 models with
`extra="forbid"` so a typo fails before anything is written, naming the field and the fix.
Profiles (`--profile NAME`) are overlays deep-merged onto the file before validation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from medallion.errors import ConfigError

# Built-in scenarios live in the checkout's configs/; $MEDALLION_SCENARIO_DIR points elsewhere
# (e.g. a non-editable install, where configs/ is not beside the package).
SCENARIO_DIR = Path(
    os.environ.get("MEDALLION_SCENARIO_DIR") or Path(__file__).resolve().parent.parent / "configs" / "scenarios"
)

# Identifiers that reach SQL (table, column, entity names) must match this allowlist.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}

FieldType = Literal["string", "int", "long", "double", "boolean", "timestamp", "date"]
DefectKind = Literal[
    "malformed_json",
    "null_required",
    "wrong_type",
    "out_of_range",
    "duplicate",
    "late",
    "out_of_order",
    "orphan_fk",
    "schema_drift",
]
DEFECT_KINDS: tuple[str, ...] = DefectKind.__args__  # type: ignore[attr-defined]
# Each defect kind's fate downstream (docs/design.md §3.5). schema_drift depends on the change.
DEFECT_FATES: dict[str, str] = {
    "malformed_json": "quarantine",
    "null_required": "quarantine",
    "wrong_type": "quarantine",
    "out_of_range": "quarantine",
    "orphan_fk": "quarantine",
    "duplicate": "dedupe",
    "late": "keep",
    "out_of_order": "keep",
}


def defect_fate(kind: str, change: str | None = None) -> str:
    """quarantine, dedupe or keep: what the pipeline must do with a line of this defect kind."""
    if kind == "schema_drift":
        return "keep" if change == "add" else "quarantine"
    return DEFECT_FATES[kind]


def parse_duration(value: Any) -> timedelta:
    """'15m', '1h', '30s', '2d', '500ms', a number of seconds, or a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    raise ValueError(f"{value!r} is not a duration; write it like '30s', '15m', '1h' or '1d'")


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration, e.g. '15m'."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _parse_instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError(f"{value!r} is not an ISO-8601 instant like '2026-01-05T06:00:00Z'")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


Instant = Annotated[
    datetime,
    BeforeValidator(_parse_instant),
    PlainSerializer(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]


def _check_identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not an allowed identifier: use lower-case letters, digits and "
            "underscores, starting with a letter (at most 63 characters)"
        )
    return value


Identifier = Annotated[str, BeforeValidator(lambda v: _check_identifier(str(v)))]


class Model(BaseModel):
    """Base for every scenario model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- value samplers (generator side; the pipeline ignores them) ---------------------------


class SequenceSample(Model):
    """Monotonic ids `prefix` + zero-padded counter, continuing across batches."""

    kind: Literal["sequence"]
    prefix: str = ""
    width: int = Field(default=6, ge=1, le=18)
    start: int = Field(default=1, ge=0)


class UuidSample(Model):
    """UUID version 4 layout built from the entity's seeded random stream."""

    kind: Literal["uuid"]


class UniformSample(Model):
    """Uniform on [low, high); integers when the field is int/long."""

    kind: Literal["uniform"]
    low: float
    high: float
    decimals: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _ordered(self) -> UniformSample:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class NormalSample(Model):
    """Normal(mean, std), optionally clipped to [clip[0], clip[1]]."""

    kind: Literal["normal"]
    mean: float
    std: float = Field(gt=0)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)


class LognormalSample(Model):
    """exp(Normal(mean, sigma)), for prices, durations and other skewed positives."""

    kind: Literal["lognormal"]
    mean: float
    sigma: float = Field(gt=0)
    decimals: int | None = Field(default=None, ge=0, le=9)


class PoissonSample(Model):
    """Poisson(lam) counts."""

    kind: Literal["poisson"]
    lam: float = Field(gt=0)


class CategoricalSample(Model):
    """One of the keys of `weights`, with probability proportional to the weight."""

    kind: Literal["categorical"]
    weights: dict[str, float]

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("weights needs at least one category")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return weights


class BooleanSample(Model):
    """True with probability p."""

    kind: Literal["boolean"]
    p: float = Field(ge=0, le=1)


class VocabularySample(Model):
    """A word from a vocabulary shipped with the project (generators/vocabularies/NAME.txt),
    uniform or zipf-skewed (the first words of the file are the most frequent)."""

    kind: Literal["vocabulary"]
    vocabulary: str
    skew: Literal["uniform", "zipf"] = "uniform"
    zipf_a: float = Field(default=1.2, gt=1.0)


class IntervalTimeSample(Model):
    """An instant uniform within the batch's simulated interval."""

    kind: Literal["interval_time"]


class ReferenceSample(Model):
    """A key of the referenced entity (the field's `references`), uniform or zipf-skewed."""

    kind: Literal["reference"]
    skew: Literal["uniform", "zipf"] = "uniform"
    zipf_a: float = Field(default=1.2, gt=1.0)


class ParentSample(Model):
    """The key of the parent row this row was spawned with (see `Entity.spawn`), or with
    `field` that field of the parent row (e.g. the user of a transaction's line item)."""

    kind: Literal["parent"]
    field: Identifier | None = None


class UnitSample(Model):
    """The key of the arrival unit this row was generated for (see `Arrival.per`), or with
    `field` that field of the unit row (e.g. the road segment of a sensor)."""

    kind: Literal["unit"]
    field: Identifier | None = None


class ConstantSample(Model):
    """Always the same value."""

    kind: Literal["constant"]
    value: str | int | float | bool


class DerivedSample(Model):
    """A number driven by another numeric field of the same row (e.g. latency by CPU):
    (intercept + slope * source**power) * exp(Normal(0, noise_sigma)) + Normal(0, noise_std),
    clipped to `clip` and the field's range."""

    kind: Literal["derived"]
    source: Identifier
    intercept: float = 0.0
    slope: float = 1.0
    power: float = 1.0
    noise_std: float = Field(default=0.0, ge=0)
    noise_sigma: float = Field(default=0.0, ge=0)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)


class LoadShape(Model):
    """Multipliers by UTC hour of day (24) and day of week (7, Monday first); 1.0 when absent."""

    hour_of_day: list[float] | None = None
    day_of_week: list[float] | None = None

    @model_validator(mode="after")
    def _lengths(self) -> LoadShape:
        if self.hour_of_day is not None and len(self.hour_of_day) != 24:
            raise ValueError("hour_of_day needs 24 multipliers (hour 0 to 23)")
        if self.day_of_week is not None and len(self.day_of_week) != 7:
            raise ValueError("day_of_week needs 7 multipliers (Monday to Sunday)")
        return self


class ShapedSample(Model):
    """A number that follows a daily and weekly load shape at the row's event time:
    base + scale * hour_of_day[h] * day_of_week[d] + Normal(0, noise_std). With `by`, the
    shape is chosen per row by the value of that string field (e.g. a workload class)."""

    kind: Literal["shaped"]
    shapes: dict[str, LoadShape]
    by: Identifier | None = None
    base: float = 0.0
    scale: float = 1.0
    noise_std: float = Field(default=0.0, ge=0)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _default_shape(self) -> ShapedSample:
        if not self.shapes:
            raise ValueError("shapes needs at least one named shape")
        if self.by is None and len(self.shapes) != 1:
            raise ValueError("several shapes need `by`: the field whose value picks the shape")
        return self


class DegradationSample(Model):
    """A sensor that drifts as its unit wears toward failure (see `Arrival.lifetime`):
    base + amplitude * wear**exponent + Normal(0, noise_std), wear going from the unit's
    initial wear to 1 at failure. Sensor faults on top, all kept inside the field's range:
    `spike_share` of readings jump by +-`spike_size`; in `stuck_share` of unit-days the
    sensor repeats its noiseless value from the start of the day; `drift_share` of units
    read `drift_per_day` more for every day in service (calibration drift)."""

    kind: Literal["degradation"]
    base: float
    amplitude: float
    exponent: float = Field(default=2.0, gt=0)
    noise_std: float = Field(default=0.0, ge=0)
    spike_share: float = Field(default=0.0, ge=0, le=1)
    spike_size: float = 0.0
    stuck_share: float = Field(default=0.0, ge=0, le=1)
    drift_share: float = Field(default=0.0, ge=0, le=1)
    drift_per_day: float = 0.0
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)


class RemainingLifeSample(Model):
    """Hours until the row's unit fails (its remaining useful life; see `Arrival.lifetime`)."""

    kind: Literal["remaining_life"]
    decimals: int | None = Field(default=1, ge=0, le=9)


Sample = Annotated[
    SequenceSample
    | UuidSample
    | UniformSample
    | NormalSample
    | LognormalSample
    | PoissonSample
    | CategoricalSample
    | BooleanSample
    | VocabularySample
    | IntervalTimeSample
    | ReferenceSample
    | ParentSample
    | UnitSample
    | ConstantSample
    | DerivedSample
    | ShapedSample
    | DegradationSample
    | RemainingLifeSample,
    Field(discriminator="kind"),
]


# --- schema ---------------------------------------------------------------------------------


class FieldSpec(Model):
    """One field of an entity: its type and the rules silver derives from it."""

    type: FieldType
    required: bool = False
    range: tuple[float, float] | None = None
    enum: list[str] | None = None
    references: Identifier | None = None
    sample: Sample | None = None
    null_share: float = Field(default=0.0, ge=0, lt=1)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _enum_from_weights(cls, data: Any) -> Any:
        # A categorical field's allowed values are its categories unless declared otherwise.
        if isinstance(data, dict) and data.get("enum") is None:
            sample = data.get("sample")
            if isinstance(sample, dict) and sample.get("kind") == "categorical":
                weights = sample.get("weights")
                if isinstance(weights, dict):
                    return {**data, "enum": list(weights)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.range is not None:
            if self.type not in ("int", "long", "double"):
                raise ValueError(f"range applies to numeric fields, not to type {self.type!r}")
            if self.range[0] > self.range[1]:
                raise ValueError(f"range {list(self.range)} must be [min, max] with min <= max")
        if self.enum is not None and self.type != "string":
            raise ValueError(f"enum applies to string fields, not to type {self.type!r}")
        if self.required and self.null_share > 0:
            raise ValueError("a required field cannot have a null_share; set it to 0 or drop required")
        return self


class Lifetime(Model):
    """Units that wear out: a unit emits from its `start` (a timestamp field of the unit) while
    its wear, `wear` (initial share, a field of the unit) + hours in service / `life_hours`
    (a numeric field of the unit), is below 1; then it has failed and stays silent."""

    start: Identifier
    life_hours: Identifier
    wear: Identifier | None = None


class Arrival(Model):
    """How many rows a batch holds: per unit per `every`, count ~ Poisson(lambda(t)).

    lambda(t) = rate x hour_of_day[hour(t)] x day_of_week[weekday(t)] (Monday = 0).
    `per` names the entity whose rows are the units (e.g. drivers); without it there is one unit.
    """

    per: Identifier | None = None
    rate: float = Field(ge=0)
    every: Duration = timedelta(minutes=15)
    hour_of_day: list[float] | None = None
    day_of_week: list[float] | None = None
    # poisson: count ~ Poisson(lambda(t)); fixed: exactly round(lambda(t)) rows per unit per
    # `every`, evenly spaced (a set frequency); uniform: an integer count in `count_range`.
    distribution: Literal["poisson", "fixed", "uniform"] = "poisson"
    count_range: tuple[int, int] | None = None
    lifetime: Lifetime | None = None

    @model_validator(mode="after")
    def _counts(self) -> Arrival:
        if self.distribution == "uniform":
            if self.count_range is None or not 0 <= self.count_range[0] <= self.count_range[1]:
                raise ValueError("distribution 'uniform' needs count_range: [min, max] with 0 <= min <= max")
        elif self.count_range is not None:
            raise ValueError("count_range applies to distribution 'uniform' only")
        if self.lifetime is not None and self.per is None:
            raise ValueError("lifetime needs `per`: the entity whose rows wear out")
        return self

    @field_validator("hour_of_day")
    @classmethod
    def _24(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 24 or min(value) < 0):
            raise ValueError("hour_of_day needs 24 non-negative multipliers (hour 0 to 23)")
        return value

    @field_validator("day_of_week")
    @classmethod
    def _7(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) != 7 or min(value) < 0):
            raise ValueError("day_of_week needs 7 non-negative multipliers (Monday to Sunday)")
        return value

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("every must be a positive duration such as '15m'")
        return value


class Spawn(Model):
    """Rows created together with each new row of a parent entity (drivers with a company)."""

    parent: Identifier
    count: int = Field(ge=1)
    extra_lam: float = Field(default=0.0, ge=0)  # count + Poisson(extra_lam) children per parent


class DriftSpec(Model):
    """A scheduled schema change: from `from_batch` (until `until_batch`, exclusive) a share
    `rate` of the entity's records add a field, rename one (`to` = new name) or retype one
    (`to` = new JSON type)."""

    change: Literal["add", "rename", "retype"]
    field: Identifier
    from_batch: int = Field(ge=0)
    until_batch: int | None = Field(default=None, ge=1)
    rate: float = Field(default=1.0, gt=0, le=1)
    to: str | None = None
    type: FieldType | None = None

    @model_validator(mode="after")
    def _complete(self) -> DriftSpec:
        if self.change == "rename" and not (self.to and IDENTIFIER.match(self.to)):
            raise ValueError("a rename needs `to`: the new field name (lower_snake_case)")
        if self.change == "retype" and self.to not in ("string", "number", "boolean"):
            raise ValueError("a retype needs `to`: the new JSON type, string, number or boolean")
        if self.change == "add" and self.type is None:
            raise ValueError("an add needs `type`: the added field's type")
        if self.until_batch is not None and self.until_batch <= self.from_batch:
            raise ValueError("until_batch must be after from_batch")
        return self


class Defects(Model):
    """Per-kind share of lines that carry each defect; 0 turns a kind off."""

    malformed_json: float = Field(default=0.0, ge=0, le=0.5)
    null_required: float = Field(default=0.0, ge=0, le=0.5)
    wrong_type: float = Field(default=0.0, ge=0, le=0.5)
    out_of_range: float = Field(default=0.0, ge=0, le=0.5)
    duplicate: float = Field(default=0.0, ge=0, le=0.5)
    late: float = Field(default=0.0, ge=0, le=0.5)
    out_of_order: float = Field(default=0.0, ge=0, le=0.5)
    orphan_fk: float = Field(default=0.0, ge=0, le=0.5)
    drift: list[DriftSpec] = Field(default_factory=list)

    def rate(self, kind: str) -> float:
        """The configured share of lines for one defect kind."""
        return float(getattr(self, kind)) if kind != "schema_drift" else 0.0

    @property
    def enabled(self) -> bool:
        return any(self.rate(k) > 0 for k in DEFECT_KINDS) or bool(self.drift)


class Expectation(Model):
    """A declared SQL rule on silver rows: `sql` is a boolean expression that valid rows meet."""

    name: Identifier
    sql: str
    action: Literal["warn", "drop", "quarantine", "fail"] = "quarantine"


class Entity(Model):
    """A dataset the generator writes and the pipeline promotes: dimension or fact."""

    role: Literal["dimension", "fact"]
    key: Identifier
    event_time: Identifier | None = None
    fields: dict[Identifier, FieldSpec]
    baseline: int = Field(default=0, ge=0)
    spawn: Spawn | None = None
    arrival: Arrival | None = None
    defects: Defects = Field(default_factory=Defects)
    expectations: list[Expectation] = Field(default_factory=list)
    files_per_batch: int = Field(default=1, ge=1, le=99)
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Entity:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of the fields ({', '.join(self.fields)})")
        if self.event_time is not None:
            spec = self.fields.get(self.event_time)
            if spec is None or spec.type != "timestamp":
                raise ValueError(f"event_time {self.event_time!r} must name a timestamp field")
        if self.role == "fact" and self.event_time is None:
            raise ValueError("a fact entity needs event_time: the timestamp field gold windows use")
        if self.arrival is None and self.spawn is None and self.baseline == 0:
            raise ValueError("the entity never gets rows: give it a baseline, an arrival or a spawn")
        return self

    def field_type(self, name: str) -> str:
        return self.fields[name].type

    @property
    def required_fields(self) -> list[str]:
        """Fields silver requires: declared required ones and always the key."""
        return [n for n, f in self.fields.items() if f.required or n == self.key]


class Lookup(Model):
    """Columns joined from a silver dimension before aggregating (e.g. company of a driver)."""

    entity: Identifier
    key: Identifier  # the join column, present in both the source and the dimension
    columns: list[Identifier]


class Window(Model):
    """Tumbling event-time window."""

    column: Identifier
    size: Duration


class Metric(Model):
    """One aggregate column of a gold table."""

    name: Identifier
    agg: Literal[
        "count", "sum", "avg", "min", "max", "count_distinct", "approx_count_distinct", "percentile"
    ]
    column: Identifier | None = None
    where: str | None = None
    percentile: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _complete(self) -> Metric:
        if self.agg != "count" and self.column is None:
            raise ValueError(f"agg {self.agg!r} needs `column`: the silver column it aggregates")
        if self.agg == "percentile" and self.percentile is None:
            raise ValueError("agg 'percentile' needs `percentile`, e.g. 0.95")
        return self


class GoldTable(Model):
    """A gold aggregate: group keys x tumbling window x metrics, maintained by MERGE."""

    name: Identifier
    source: Identifier
    lookups: list[Lookup] = Field(default_factory=list)
    group_by: list[Identifier] = Field(default_factory=list)
    window: Window
    metrics: list[Metric]
    description: str = ""

    @property
    def key_columns(self) -> list[str]:
        """The gold table's primary key: group keys and the window start."""
        return [*self.group_by, "window_start"]


class DatabaseTarget(Model):
    """An external database for export. Without `url`, medallion starts a throwaway server.

    The password is never in the file: `password_env` names the environment variable holding it.
    """

    url: str | None = None
    user: Identifier = "medallion"
    password_env: str = "MEDALLION_DB_PASSWORD"
    database: Identifier = "medallion"

    @field_validator("url")
    @classmethod
    def _no_secret_in_url(cls, url: str | None) -> str | None:
        if url is not None and re.search(r"password=|://[^/@]*:[^/@]*@", url, re.IGNORECASE):
            raise ValueError(
                "the URL holds a password; remove it and put the password in the environment "
                "variable named by password_env"
            )
        return url


class Export(Model):
    """Which gold tables reach which databases."""

    tables: list[Identifier] | None = None
    postgres: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_POSTGRES_PASSWORD"))
    mysql: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_MYSQL_PASSWORD"))


class Pipeline(Model):
    """Streaming settings shared by the jobs."""

    trigger_interval: Duration = timedelta(seconds=10)
    max_files_per_trigger: int = Field(default=1000, ge=1)
    quality_threshold: float = Field(default=0.0, ge=0, le=1)


class Clock(Model):
    """The simulated clock: batch b covers [start + b*interval, start + (b+1)*interval)."""

    start: Instant
    interval: Duration = timedelta(minutes=15)
    speed: float = Field(default=0.0, ge=0)
    # Simulated time written as fast as possible before pacing at `speed` starts (e.g. 90d of
    # history, then live). Content never depends on it, only the pace of writing.
    backfill: Duration = timedelta(0)


class Scenario(Model):
    """A whole scenario file, after its profile overlay."""

    name: Identifier
    description: str = ""
    clock: Clock
    watermark_delay: Duration = timedelta(minutes=30)
    entities: dict[Identifier, Entity]
    gold: list[GoldTable] = Field(default_factory=list)
    export: Export = Field(default_factory=Export)
    pipeline: Pipeline = Field(default_factory=Pipeline)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: str | None = None

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        problems: list[str] = []
        for name, entity in self.entities.items():
            for field_name, spec in entity.fields.items():
                if spec.references is not None and spec.references not in self.entities:
                    problems.append(
                        f"entities.{name}.fields.{field_name}.references: unknown entity "
                        f"{spec.references!r}; expected one of {sorted(self.entities)}"
                    )
            if entity.arrival and entity.arrival.per and entity.arrival.per not in self.entities:
                problems.append(f"entities.{name}.arrival.per: unknown entity {entity.arrival.per!r}")
            if entity.spawn and entity.spawn.parent not in self.entities:
                problems.append(f"entities.{name}.spawn.parent: unknown entity {entity.spawn.parent!r}")
        for gold in self.gold:
            source = self.entities.get(gold.source)
            if source is None:
                problems.append(f"gold.{gold.name}.source: unknown entity {gold.source!r}")
                continue
            columns = set(source.fields)
            for lookup in gold.lookups:
                dim = self.entities.get(lookup.entity)
                if dim is None:
                    problems.append(f"gold.{gold.name}.lookups: unknown entity {lookup.entity!r}")
                    continue
                missing = [c for c in lookup.columns if c not in dim.fields]
                if missing:
                    problems.append(f"gold.{gold.name}.lookups: {lookup.entity} has no {missing}")
                columns.update(lookup.columns)
            wanted = [*gold.group_by, gold.window.column]
            wanted += [m.column for m in gold.metrics if m.column]
            for column in wanted:
                if column not in columns:
                    problems.append(
                        f"gold.{gold.name}: column {column!r} is neither a field of "
                        f"{gold.source} nor a lookup column"
                    )
        if self.export.tables is not None:
            known = {g.name for g in self.gold}
            for table in self.export.tables:
                if table not in known:
                    problems.append(f"export.tables: {table!r} is not a gold table ({sorted(known)})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def dimensions(self) -> list[str]:
        """Dimension entities, parents before children (so foreign keys resolve)."""
        return [n for n in self.processing_order if self.entities[n].role == "dimension"]

    @property
    def facts(self) -> list[str]:
        return [n for n in self.processing_order if self.entities[n].role == "fact"]

    @property
    def processing_order(self) -> list[str]:
        """Entities ordered so every referenced entity comes before its referrers."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name in visiting:
                return
            visiting.add(name)
            entity = self.entities[name]
            for spec in entity.fields.values():
                if spec.references and spec.references != name:
                    visit(spec.references)
            if entity.spawn:
                visit(entity.spawn.parent)
            if entity.arrival and entity.arrival.per:
                visit(entity.arrival.per)
            order.append(name)

        for name in sorted(self.entities, key=lambda n: (self.entities[n].role != "dimension", n)):
            visit(name)
        return order

    @property
    def processing_stages(self) -> list[list[str]]:
        """`processing_order` cut into stages: each entity's references are all in earlier
        stages, so the entities of one stage can be promoted side by side."""
        stage_of: dict[str, int] = {}
        for name in self.processing_order:
            refs = {spec.references for spec in self.entities[name].fields.values()}
            refs.discard(None)
            refs.discard(name)
            stage_of[name] = 1 + max((stage_of[r] for r in refs if r in stage_of), default=-1)
        stages: list[list[str]] = [[] for _ in range(max(stage_of.values(), default=-1) + 1)]
        for name in self.processing_order:
            stages[stage_of[name]].append(name)
        return stages

    def gold_table(self, name: str) -> GoldTable:
        for table in self.gold:
            if table.name == name:
                return table
        raise KeyError(name)

    @property
    def export_tables(self) -> list[str]:
        return list(self.export.tables) if self.export.tables is not None else [g.name for g in self.gold]

    def sha256(self) -> str:
        """Hash of the effective configuration (after the profile), recorded in every manifest."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- loading ----------------------------------------------------------------------------------


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """NAME -> configs/scenarios/NAME.yaml; anything with a suffix or a slash is a path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
    else:
        path = SCENARIO_DIR / f"{text}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise ConfigError(
            str(path),
            [f"scenario {text!r} not found; use one of {known} or a path to a YAML file"],
        )
    return path


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Overlay wins; nested mappings merge key by key; lists and scalars are replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_scenario(
    name_or_path: str | Path,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Scenario:
    """Read, overlay and validate a scenario; raise ConfigError naming every bad field."""
    path = resolve_scenario_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["the file must hold a mapping with name, clock and entities"])
    return scenario_from_dict(raw, source=str(path), profile=profile, overrides=overrides)


def scenario_from_dict(
    raw: dict[str, Any],
    source: str = "<scenario>",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Scenario:
    """Validate an already-parsed scenario mapping (with optional profile and overrides)."""
    data = dict(raw)
    profiles = data.get("profiles") or {}
    if profile is not None:
        if profile not in profiles:
            raise ConfigError(
                source,
                [f"--profile: unknown profile {profile!r}; this scenario has {sorted(profiles)}"],
            )
        data = deep_merge(data, profiles[profile])
        data["profile"] = profile
    if overrides:
        data = deep_merge(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: dotted field path, the bad value, and what to write instead."""
    problems = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        bad = error.get("input")
        if error["type"] == "extra_forbidden":
            fix = "remove it or check its spelling against `medallion schema`"
            problems.append(f"{location}: unknown field; {fix}")
        elif error["type"] == "missing":
            problems.append(f"{location}: required field is missing; add it")
        else:
            shown = json.dumps(bad, default=str)[:80] if not isinstance(bad, dict) else "{...}"
            problems.append(f"{location}: {message} (got {shown})")
    return problems


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario file format, for editors (`medallion schema`)."""
    return Scenario.model_json_schema(mode="validation")
