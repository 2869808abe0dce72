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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
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

# Identifiers that reach SQL (table, column, entity names) and paths must match this
# allowlist. `\Z`, not `$`: `$` also matches before a trailing newline.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)\s*\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Environment variable names (export passwords are read from the variable a scenario names);
# pydantic's (Rust) regex: `$` is the true end of the text.
_ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,127}$"

# Limits on what a scenario may ask for. The generator holds a whole batch in memory and the
# pipeline reads the file into one process, so each count, rate and size is bounded by what a
# run can allocate; the limits are stated in errors and in `medallion schema`.
MAX_SCENARIO_BYTES = 1024 * 1024  # the YAML file itself
MAX_YAML_DEPTH = 32  # nesting of mappings and lists in the file
MAX_SQL_CHARS = 4000  # an expectation's `sql` or a metric's `where`
MAX_TEXT_CHARS = 10_000  # descriptions and other free text
MAX_SHORT_TEXT = 256  # prefixes, constant values, URLs' parts ...
MAX_ENTITIES = 100
MAX_FIELDS = 500  # per entity
MAX_CATEGORIES = 10_000  # categorical weights, enums
MAX_RULES = 200  # expectations per entity, metrics and gold tables
MAX_BASELINE = 10_000_000  # rows of an entity's first batch
MAX_RATE = 1_000_000.0  # arrivals per unit per `every`, Poisson means
MAX_SPAWN = 10_000  # children per parent row
MAX_MULTIPLIER = 1_000.0  # hour-of-day / day-of-week load factors
MAX_TICKS_PER_BATCH = 100_000  # `clock.interval` / `arrival.every`
MAX_ROWS_PER_BATCH = 50_000_000  # expected rows of one entity in one batch (all units)
MAX_BATCH_ID = 1_000_000_000  # drift schedules
MAX_DURATION = timedelta(days=36_600)  # any duration (about 100 years)
MAX_INTERVAL = timedelta(days=7)  # one batch of simulated time
MIN_START = datetime(1970, 1, 1, tzinfo=UTC)
# Latest clock start: batches then still have about 7,000 years before timestamps leave year
# 9999 (what Python, JSON and Spark can represent).
MAX_START = datetime(3000, 1, 1, tzinfo=UTC)
MAX_LINE_BYTES = 128 * 1024 * 1024  # upper bound of pipeline.max_line_bytes
MAX_JSON_DEPTH = 1000  # upper bound of pipeline.max_json_depth (Jackson's own default limit)
MAX_PARAM = 1e15  # magnitude of a sampler's numeric parameter
MAX_MESSAGE_PROBLEMS = 20  # problems listed in one error; the rest are counted
MAX_PROBLEM_CHARS = 300  # characters of one listed problem


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr for messages: never formats more than `limit` characters of a value."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, (bool, float, type(None))):
        text = repr(value)
    elif isinstance(value, int):
        # Huge ints: str() of more than 4,300 digits raises, and would be unbounded anyway.
        text = repr(value) if abs(value) < 10**limit else f"<an integer of about {len(hex(value)) * 1.2:.0f} digits>"
    elif isinstance(value, dict):
        text = "{...}"
    elif isinstance(value, (list, tuple)):
        text = "[...]"
    elif isinstance(value, (date, timedelta)):  # datetime is a date; YAML reads 2026-01-05 as one
        text = str(value)
    else:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_problems(problems: list[str]) -> list[str]:
    """At most MAX_MESSAGE_PROBLEMS problems of at most MAX_PROBLEM_CHARS each."""
    shown = [p if len(p) <= MAX_PROBLEM_CHARS else p[: MAX_PROBLEM_CHARS - 3] + "..." for p in problems[:MAX_MESSAGE_PROBLEMS]]
    if len(problems) > MAX_MESSAGE_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_MESSAGE_PROBLEMS} more problem(s)")
    return shown

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
    """'15m', '1h', '30s', '2d', '500ms', a number of seconds, or a timedelta.

    Durations are non-negative, finite and at most MAX_DURATION (timedelta itself overflows
    past about 2.7 million years, with an OverflowError pydantic would not report).
    """
    seconds: float | None = None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e300 else float("inf")
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds is None:
        raise ValueError(f"{short(value)} is not a duration; write it like '30s', '15m', '1h' or '1d'")
    if not 0 <= seconds <= MAX_DURATION.total_seconds():  # also false for NaN
        raise ValueError(f"{short(value)} is out of range; a duration is between 0s and {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


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


def _between(low: timedelta, high: timedelta = MAX_DURATION) -> AfterValidator:
    """Bounds of a Duration, spelled like the scenario ('1ms', '7d') in the error (pydantic's
    own ge/le would print timedelta reprs); `_between_schema` states them in the JSON schema."""
    low_text, high_text = format_duration(low), format_duration(high)

    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(f"must be between {low_text} and {high_text}")
        return value

    return AfterValidator(check)


def _between_schema(low: timedelta, high: timedelta = MAX_DURATION) -> Any:
    return Field(json_schema_extra={"minimumDuration": format_duration(low), "maximumDuration": format_duration(high)})


_MS = timedelta(milliseconds=1)
# A duration where 0 makes no sense (an interval, a window, a trigger): at least 1 ms, the
# clock's resolution (shorter ones round down to 0 ms).
PositiveDuration = Annotated[Duration, _between(_MS), _between_schema(_MS)]


def _parse_instant(value: Any) -> datetime:
    example = "an ISO-8601 instant like '2026-01-05T06:00:00Z'"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError(f"{short(value)} is not {example}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 lies past year 9999 in UTC
        raise ValueError(f"{short(value)} is out of range; {example}") from None
    if not MIN_START <= parsed < MAX_START:
        raise ValueError(
            f"{short(value)} is out of range; the clock starts from 1970-01-01 and before "
            f"{MAX_START.year}-01-01 (so every batch stays within year 9999)"
        )
    return parsed


Instant = Annotated[
    datetime,
    Field(
        description="UTC instant from 1970-01-01T00:00:00Z, before 3000-01-01T00:00:00Z",
        json_schema_extra={"formatMinimum": "1970-01-01T00:00:00Z", "formatExclusiveMaximum": "3000-01-01T00:00:00Z"},
    ),
    BeforeValidator(_parse_instant),
    PlainSerializer(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]


def _check_identifier(value: Any) -> str:
    # Only strings (and YAML's plain ints, e.g. a key `1`, reported as not allowed below):
    # str() of a mapping or a list would format an unbounded value.
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(
            f"{short(value)} is not an allowed identifier: use lower-case letters, digits and "
            "underscores, starting with a letter (at most 63 characters)"
        )
    return value


# The pattern (same allowlist in pydantic's regex dialect) puts the rule into the JSON schema;
# the BeforeValidator runs first and gives the readable message.
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$"), BeforeValidator(_check_identifier)]
# Free text and short strings, bounded so no field can hold an unbounded value.
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]
SqlText = Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS)]
Multiplier = Annotated[float, Field(ge=0, le=MAX_MULTIPLIER)]
# A sampler's parameter: finite and small enough that sums, powers and noise of it stay
# finite doubles (a JSON line cannot hold Infinity).
Param = Annotated[float, Field(ge=-MAX_PARAM, le=MAX_PARAM)]
Exponent = Annotated[float, Field(ge=-10, le=10)]


class Model(BaseModel):
    """Base for every scenario model: unknown keys are errors, values are immutable."""

    # allow_inf_nan=False: every float of the scenario (nested ones too) is finite.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- value samplers (generator side; the pipeline ignores them) ---------------------------


class SequenceSample(Model):
    """Monotonic ids `prefix` + zero-padded counter, continuing across batches."""

    kind: Literal["sequence"]
    prefix: str = Field(default="", max_length=64)
    width: int = Field(default=6, ge=1, le=18)
    start: int = Field(default=1, ge=0, le=10**17)


class UuidSample(Model):
    """UUID version 4 layout built from the entity's seeded random stream."""

    kind: Literal["uuid"]


class UniformSample(Model):
    """Uniform on [low, high); integers when the field is int/long."""

    kind: Literal["uniform"]
    low: Param
    high: Param
    decimals: int | None = Field(default=None, ge=0, le=9)

    @model_validator(mode="after")
    def _ordered(self) -> UniformSample:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class NormalSample(Model):
    """Normal(mean, std), optionally clipped to [clip[0], clip[1]]."""

    kind: Literal["normal"]
    mean: Param
    std: float = Field(gt=0, le=MAX_PARAM)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)


class LognormalSample(Model):
    """exp(Normal(mean, sigma)), for prices, durations and other skewed positives."""

    kind: Literal["lognormal"]
    # exp(mean + k * sigma) must stay a finite double (exp overflows past 709).
    mean: float = Field(ge=-100, le=100)
    sigma: float = Field(gt=0, le=10)
    decimals: int | None = Field(default=None, ge=0, le=9)


class PoissonSample(Model):
    """Poisson(lam) counts."""

    kind: Literal["poisson"]
    lam: float = Field(gt=0, le=MAX_RATE)


class CategoricalSample(Model):
    """One of the keys of `weights`, with probability proportional to the weight."""

    kind: Literal["categorical"]
    weights: dict[ShortText, Annotated[float, Field(ge=0, le=1e12)]] = Field(max_length=MAX_CATEGORIES)

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
    vocabulary: Identifier  # a file name under generators/vocabularies/: no path parts
    skew: Literal["uniform", "zipf"] = "uniform"
    zipf_a: float = Field(default=1.2, gt=1.0, le=100.0)


class IntervalTimeSample(Model):
    """An instant uniform within the batch's simulated interval."""

    kind: Literal["interval_time"]


class ReferenceSample(Model):
    """A key of the referenced entity (the field's `references`), uniform or zipf-skewed."""

    kind: Literal["reference"]
    skew: Literal["uniform", "zipf"] = "uniform"
    zipf_a: float = Field(default=1.2, gt=1.0, le=100.0)


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
    value: ShortText | Annotated[int, Field(ge=-(2**63), lt=2**63)] | float | bool


class DerivedSample(Model):
    """A number driven by another numeric field of the same row (e.g. latency by CPU):
    (intercept + slope * source**power) * exp(Normal(0, noise_sigma)) + Normal(0, noise_std),
    clipped to `clip` and the field's range."""

    kind: Literal["derived"]
    source: Identifier
    intercept: Param = 0.0
    slope: Param = 1.0
    power: Exponent = 1.0
    noise_std: float = Field(default=0.0, ge=0, le=MAX_PARAM)
    noise_sigma: float = Field(default=0.0, ge=0, le=10)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)


class LoadShape(Model):
    """Multipliers by UTC hour of day (24) and day of week (7, Monday first); 1.0 when absent."""

    hour_of_day: list[Multiplier] | None = Field(default=None, max_length=24)
    day_of_week: list[Multiplier] | None = Field(default=None, max_length=7)

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
    shapes: dict[ShortText, LoadShape] = Field(max_length=MAX_CATEGORIES)
    by: Identifier | None = None
    base: Param = 0.0
    scale: Param = 1.0
    noise_std: float = Field(default=0.0, ge=0, le=MAX_PARAM)
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
    base: Param
    amplitude: Param
    exponent: float = Field(default=2.0, gt=0, le=10)
    noise_std: float = Field(default=0.0, ge=0, le=MAX_PARAM)
    spike_share: float = Field(default=0.0, ge=0, le=1)
    spike_size: Param = 0.0
    stuck_share: float = Field(default=0.0, ge=0, le=1)
    drift_share: float = Field(default=0.0, ge=0, le=1)
    drift_per_day: Param = 0.0
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
    enum: list[ShortText] | None = Field(default=None, max_length=MAX_CATEGORIES)
    references: Identifier | None = None
    sample: Sample | None = None
    null_share: float = Field(default=0.0, ge=0, lt=1)
    description: Text = ""

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
    rate: float = Field(ge=0, le=MAX_RATE)
    every: PositiveDuration = timedelta(minutes=15)
    hour_of_day: list[Multiplier] | None = Field(default=None, max_length=24)
    day_of_week: list[Multiplier] | None = Field(default=None, max_length=7)
    # poisson: count ~ Poisson(lambda(t)); fixed: exactly round(lambda(t)) rows per unit per
    # `every`, evenly spaced (a set frequency); uniform: an integer count in `count_range`.
    distribution: Literal["poisson", "fixed", "uniform"] = "poisson"
    count_range: tuple[Annotated[int, Field(ge=0, le=int(MAX_RATE))], Annotated[int, Field(ge=0, le=int(MAX_RATE))]] | None = None
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


class Spawn(Model):
    """Rows created together with each new row of a parent entity (drivers with a company)."""

    parent: Identifier
    count: int = Field(ge=1, le=MAX_SPAWN)
    extra_lam: float = Field(default=0.0, ge=0, le=MAX_SPAWN)  # count + Poisson(extra_lam) children per parent


class DriftSpec(Model):
    """A scheduled schema change: from `from_batch` (until `until_batch`, exclusive) a share
    `rate` of the entity's records add a field, rename one (`to` = new name) or retype one
    (`to` = new JSON type)."""

    change: Literal["add", "rename", "retype"]
    field: Identifier
    from_batch: int = Field(ge=0, le=MAX_BATCH_ID)
    until_batch: int | None = Field(default=None, ge=1, le=MAX_BATCH_ID)
    rate: float = Field(default=1.0, gt=0, le=1)
    to: ShortText | None = None
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
    drift: list[DriftSpec] = Field(default_factory=list, max_length=MAX_RULES)

    def rate(self, kind: str) -> float:
        """The configured share of lines for one defect kind."""
        return float(getattr(self, kind)) if kind != "schema_drift" else 0.0

    @property
    def enabled(self) -> bool:
        return any(self.rate(k) > 0 for k in DEFECT_KINDS) or bool(self.drift)


class Expectation(Model):
    """A declared SQL rule on silver rows: `sql` is a boolean expression that valid rows meet."""

    name: Identifier
    # Vetted against Spark's own parser when the pipeline starts (spark_jobs/sql_guard.py).
    sql: SqlText
    action: Literal["warn", "drop", "quarantine", "fail"] = "quarantine"


class Entity(Model):
    """A dataset the generator writes and the pipeline promotes: dimension or fact."""

    role: Literal["dimension", "fact"]
    key: Identifier
    event_time: Identifier | None = None
    fields: dict[Identifier, FieldSpec] = Field(min_length=1, max_length=MAX_FIELDS)
    baseline: int = Field(default=0, ge=0, le=MAX_BASELINE)
    spawn: Spawn | None = None
    arrival: Arrival | None = None
    defects: Defects = Field(default_factory=Defects)
    expectations: list[Expectation] = Field(default_factory=list, max_length=MAX_RULES)
    files_per_batch: int = Field(default=1, ge=1, le=99)
    description: Text = ""

    @model_validator(mode="after")
    def _consistent(self) -> Entity:
        if self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of the fields ({short(', '.join(self.fields))})")
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
    columns: list[Identifier] = Field(max_length=MAX_FIELDS)


class Window(Model):
    """Tumbling event-time window."""

    column: Identifier
    # Whole seconds: Spark windows are sized in seconds.
    size: Annotated[
        Duration, _between(timedelta(seconds=1), timedelta(days=366)), _between_schema(timedelta(seconds=1), timedelta(days=366))
    ]

    @field_validator("size")
    @classmethod
    def _whole_seconds(cls, value: timedelta) -> timedelta:
        if value.microseconds:
            raise ValueError(f"window size {format_duration(value)} must be whole seconds, e.g. '15m'")
        return value


class Metric(Model):
    """One aggregate column of a gold table."""

    name: Identifier
    agg: Literal[
        "count", "sum", "avg", "min", "max", "count_distinct", "approx_count_distinct", "percentile"
    ]
    column: Identifier | None = None
    # Vetted against Spark's own parser when the pipeline starts (spark_jobs/sql_guard.py).
    where: SqlText | None = None
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
    lookups: list[Lookup] = Field(default_factory=list, max_length=MAX_ENTITIES)
    group_by: list[Identifier] = Field(default_factory=list, max_length=MAX_FIELDS)
    window: Window
    metrics: list[Metric] = Field(min_length=1, max_length=MAX_RULES)
    description: Text = ""

    @property
    def key_columns(self) -> list[str]:
        """The gold table's primary key: group keys and the window start."""
        return [*self.group_by, "window_start"]


class DatabaseTarget(Model):
    """An external database for export. Without `url`, medallion starts a throwaway server.

    The password is never in the file: `password_env` names the environment variable holding it.
    """

    url: str | None = Field(default=None, max_length=2048)
    user: Identifier = "medallion"
    # The name of an environment variable (upper-case letters, digits, underscores).
    password_env: str = Field(default="MEDALLION_DB_PASSWORD", pattern=_ENV_NAME)
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

    tables: list[Identifier] | None = Field(default=None, max_length=MAX_RULES)
    postgres: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_POSTGRES_PASSWORD"))
    mysql: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_MYSQL_PASSWORD"))


class Pipeline(Model):
    """Streaming settings shared by the jobs."""

    trigger_interval: Annotated[
        Duration, _between(_MS, timedelta(days=1)), _between_schema(_MS, timedelta(days=1))
    ] = timedelta(seconds=10)
    max_files_per_trigger: int = Field(default=1000, ge=1, le=1_000_000)
    quality_threshold: float = Field(default=0.0, ge=0, le=1)
    # Silver's limits on one landing line: a longer line is quarantined as `line_too_long`, a
    # JSON value nested deeper as `too_deep` (each level of object or array counts; a flat
    # record is depth 1), rather than both passing for `malformed_json`.
    max_line_bytes: int = Field(default=1024 * 1024, ge=1, le=MAX_LINE_BYTES)
    max_json_depth: int = Field(default=64, ge=1, le=MAX_JSON_DEPTH)


class Clock(Model):
    """The simulated clock: batch b covers [start + b*interval, start + (b+1)*interval)."""

    start: Instant
    interval: Annotated[Duration, _between(_MS, MAX_INTERVAL), _between_schema(_MS, MAX_INTERVAL)] = timedelta(minutes=15)
    speed: float = Field(default=0.0, ge=0, le=1_000_000)
    # Simulated time written as fast as possible before pacing at `speed` starts (e.g. 90d of
    # history, then live). Content never depends on it, only the pace of writing.
    backfill: Duration = timedelta(0)

    @field_validator("interval")
    @classmethod
    def _whole_ms(cls, value: timedelta) -> timedelta:
        # Batches are cut in whole milliseconds; 1.5 ms would silently become 1 ms.
        if value.microseconds % 1000:
            raise ValueError(f"interval {short(str(value))} must be whole milliseconds, e.g. '15m'")
        return value


class Scenario(Model):
    """A whole scenario file, after its profile overlay."""

    name: Identifier
    description: Text = ""
    clock: Clock
    watermark_delay: Annotated[
        Duration, _between(timedelta(0), timedelta(days=366)), _between_schema(timedelta(0), timedelta(days=366))
    ] = timedelta(minutes=30)
    entities: dict[Identifier, Entity] = Field(min_length=1, max_length=MAX_ENTITIES)
    gold: list[GoldTable] = Field(default_factory=list, max_length=MAX_RULES)
    export: Export = Field(default_factory=Export)
    pipeline: Pipeline = Field(default_factory=Pipeline)
    # Overlays, each validated as a whole scenario when the file is loaded (see
    # `scenario_from_dict`), so a broken profile fails before anyone selects it.
    profiles: dict[Identifier, dict[str, Any]] = Field(default_factory=dict, max_length=MAX_RULES)
    profile: Identifier | None = None

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
                    problems.append(f"export.tables: {table!r} is not a gold table ({short(str(sorted(known)))})")
        if not problems:
            problems += self._sizes()
        if problems:
            raise ValueError("; ".join(bounded_problems(problems)))
        return self

    def _sizes(self) -> list[str]:
        """Bounds a batch's work: ticks per batch and the rows the generator would hold.

        Rows are estimated for one batch from the declared baselines, spawn counts and
        arrival rates at their peak load factors (units = the unit entity's estimate), so a
        scenario cannot ask for more rows than a run can allocate.
        """
        problems: list[str] = []
        interval = self.clock.interval.total_seconds()
        rows: dict[str, float] = {}
        for name in self.processing_order:
            entity = self.entities[name]
            estimate = float(entity.baseline)
            if entity.spawn is not None:
                estimate += rows.get(entity.spawn.parent, 0.0) * (entity.spawn.count + entity.spawn.extra_lam)
            arrival = entity.arrival
            if arrival is not None:
                ticks = -(-interval // arrival.every.total_seconds())
                if ticks > MAX_TICKS_PER_BATCH:
                    problems.append(
                        f"entities.{name}.arrival.every: {format_duration(arrival.every)} gives {ticks:.0f} ticks "
                        f"per clock.interval ({format_duration(self.clock.interval)}); at most "
                        f"{MAX_TICKS_PER_BATCH:,} - use a longer `every` or a shorter interval"
                    )
                    continue
                peak = max(arrival.hour_of_day or [1.0]) * max(arrival.day_of_week or [1.0])
                per_tick = arrival.count_range[1] if arrival.count_range else arrival.rate * peak
                units = max(rows.get(arrival.per, 0.0), 1.0) if arrival.per else 1.0
                estimate += units * per_tick * ticks
            rows[name] = estimate
            if estimate > MAX_ROWS_PER_BATCH:
                problems.append(
                    f"entities.{name}: about {estimate:.3g} rows per batch (baseline, spawn and arrival "
                    f"at peak load); at most {MAX_ROWS_PER_BATCH:,} - lower them or shorten clock.interval"
                )
                break  # its children would only repeat the problem
        return problems

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
        """Hash of the effective configuration (after the profile), recorded in every manifest.

        Settings added after data roots already existed count only when set to something
        other than their default, so an existing run's hash (checked when it resumes) stays.
        """
        dumped = self.model_dump(mode="json")
        defaults = Pipeline()
        for name in _HASHED_WHEN_SET:
            if getattr(self.pipeline, name) == getattr(defaults, name):
                del dumped["pipeline"][name]
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_HASHED_WHEN_SET = ("max_line_bytes", "max_json_depth")


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


class ScenarioLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases and deep nesting.

    An alias (`*name`) repeats an anchored node without copying it in the file, so a few
    lines of nested aliases expand to gigabytes once a value is copied, hashed or printed.
    Scenarios are small; anchors alone are harmless, aliases are refused. Nesting is bounded
    so the recursive composer cannot exhaust the stack.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in scenario files; write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _one_line(text: str, limit: int = 300) -> str:
    joined = " ".join(text.split())
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def read_scenario_file(path: Path) -> dict[str, Any]:
    """The mapping of a scenario file: UTF-8 YAML, at most MAX_SCENARIO_BYTES, no aliases."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {short(exc.strerror or str(exc))}"]) from None
    if len(data) > MAX_SCENARIO_BYTES:
        raise ConfigError(source, [f"the file is larger than {MAX_SCENARIO_BYTES:,} bytes; a scenario is a small YAML file"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    try:
        raw = yaml.load(text, Loader=ScenarioLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(exc))}"]) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these for e.g. an integer of more than 4,300 digits.
        raise ConfigError(source, [f"not valid YAML: {_one_line(str(exc))}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, ["the file must hold a mapping with name, clock and entities"])
    return raw


def load_scenario(
    name_or_path: str | Path,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Scenario:
    """Read, overlay and validate a scenario; raise ConfigError naming every bad field."""
    path = resolve_scenario_path(name_or_path)
    raw = read_scenario_file(path)
    return scenario_from_dict(raw, source=str(path), profile=profile, overrides=overrides)


def scenario_from_dict(
    raw: dict[str, Any],
    source: str = "<scenario>",
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Scenario:
    """Validate an already-parsed scenario mapping (with optional profile and overrides).

    Every profile is validated too (as the file with that overlay), so a broken profile is
    reported when the file is loaded, not only when someone selects it.
    """
    data = dict(raw)
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(source, ["profiles: must map each profile name to a mapping of overrides, e.g. {small: {clock: {speed: 1}}}"])
    if profile is not None:
        if profile not in profiles:
            raise ConfigError(
                source,
                [f"--profile: unknown profile {short(profile)}; this scenario has {short(str(sorted(map(str, profiles))), 200)}"],
            )
        data = deep_merge(data, profiles[profile])
        data["profile"] = profile
    if overrides:
        data = deep_merge(data, overrides)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, bounded_problems(describe_validation_error(exc))) from None
    problems: list[str] = []
    base = {k: v for k, v in raw.items() if k != "profile"}
    for name, overlay in profiles.items():
        if name == profile:
            continue
        try:
            Scenario.model_validate({**deep_merge(base, overlay), "profile": name})
        except ValidationError as exc:
            problems += [f"profiles.{name}: {p}" for p in describe_validation_error(exc)]
    if problems:
        raise ConfigError(source, bounded_problems(problems))
    return scenario


_SECRET_FIELD = re.compile(r"(password|secret|token|url|_env)[^.]*$", re.IGNORECASE)


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: dotted field path, the bad value, and what to write instead."""
    problems = []
    errors = exc.errors(include_url=False, include_context=False)
    for error in errors[:MAX_MESSAGE_PROBLEMS]:
        # Each part bounded: a key of the file can be arbitrarily long.
        parts = [short(part, 40) if not isinstance(part, (str, int)) else str(part)[:40] for part in error["loc"]]
        location = ".".join(part for part in parts if not part.startswith("function-"))[:200]
        message = error["msg"].removeprefix("Value error, ")[:MAX_PROBLEM_CHARS]
        bad = error.get("input")
        if error["type"] == "extra_forbidden":
            fix = "remove it or check its spelling against `medallion schema`"
            problems.append(f"{location}: unknown field; {fix}")
        elif error["type"] == "missing":
            problems.append(f"{location}: required field is missing; add it")
        elif not location:  # a whole-scenario check: its message names the fields itself
            problems.append(message)
        elif _SECRET_FIELD.search(location):
            # A value typed here may be the secret itself (a password in `password_env`, a
            # URL with credentials): say what is wrong, never what was written.
            problems.append(f"{location}: {message} (value not shown: it may be a secret)")
        else:
            problems.append(f"{location}: {message} (got {_shown(bad)})")
    if len(errors) > MAX_MESSAGE_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_MESSAGE_PROBLEMS} more problem(s)")
    return problems


def _shown(value: Any) -> str:
    """A bad input for a message, JSON-like and at most 80 characters, never fully formatted."""
    if isinstance(value, str):
        return json.dumps(value[:80])[:80]
    if isinstance(value, float) or value is None or isinstance(value, bool):
        return json.dumps(value)
    return short(value)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of the scenario file format, for editors (`medallion schema`)."""
    return Scenario.model_json_schema(mode="validation")
