"""Value samplers of a scenario field (generator side; the pipeline ignores them)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from medallion.contracts.scenario_base import (
    MAX_CATEGORIES,
    MAX_PARAM,
    MAX_RATE,
    Exponent,
    Identifier,
    Model,
    Multiplier,
    Param,
    ShortText,
)


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


class ProductSample(Model):
    """The product of other numeric fields of the same row (e.g. a line total: quantity x
    unit price), rounded to `decimals`."""

    kind: Literal["product"]
    factors: list[Identifier] = Field(min_length=2, max_length=8)
    decimals: int | None = Field(default=None, ge=0, le=9)


class EmailSample(Model):
    """An e-mail address made from a word field of the same row (e.g. a person's name):
    the words lower-cased and joined by dots, the row's sequence number, `@` and one of
    `domains` (weighted), so addresses are unique per entity."""

    kind: Literal["email"]
    source: Identifier
    domains: dict[ShortText, Annotated[float, Field(ge=0, le=1e12)]] = Field(min_length=1, max_length=MAX_CATEGORIES)

    @field_validator("domains")
    @classmethod
    def _domains(cls, domains: dict[str, float]) -> dict[str, float]:
        bad = [d for d in domains if not _DOMAIN.match(d)]
        if bad:
            raise ValueError(f"domains {bad[:3]} must look like example.com (lower-case letters, digits, dots, dashes)")
        if sum(domains.values()) <= 0:
            raise ValueError("domains need a positive total weight")
        return domains


_DOMAIN = re.compile(r"^[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){1,4}\Z")


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


class MaintenanceWindow(Model):
    """A weekly window (UTC) in which the load is multiplied by `factor`: traffic drained
    for patching (factor below 1) or a maintenance job running (above 1)."""

    weekday: int = Field(ge=0, le=6)  # Monday = 0
    start_hour: int = Field(ge=0, le=23)
    hours: int = Field(ge=1, le=24)
    factor: Multiplier


class ShapedSample(Model):
    """A number that follows a daily and weekly load shape at the row's event time:
    base + scale * hour_of_day[h] * day_of_week[d] * maintenance + Normal(0, noise_std). With
    `by`, the shape is chosen per row by the value of that string field (e.g. a workload
    class); `maintenance` windows multiply the shape by their factor while they last."""

    kind: Literal["shaped"]
    shapes: dict[ShortText, LoadShape] = Field(max_length=MAX_CATEGORIES)
    by: Identifier | None = None
    base: Param = 0.0
    scale: Param = 1.0
    noise_std: float = Field(default=0.0, ge=0, le=MAX_PARAM)
    clip: tuple[float, float] | None = None
    decimals: int | None = Field(default=None, ge=0, le=9)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, max_length=MAX_CATEGORIES)

    @model_serializer(mode="wrap")
    def _omit_no_maintenance(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out when empty, so scenarios written before windows existed keep their
        # config hash (and a resumed run its data root).
        data = handler(self)
        if not self.maintenance and isinstance(data, dict):
            data.pop("maintenance", None)
        return data

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


class PricedSample(Model):
    """A price from per-category tables: (base + `times` x sum of prices[field][value of
    field]) x exp(Normal(0, noise_sigma)), `times` a numeric field of the row (e.g. a node
    count; 1 without it) and a category missing from a table adding 0. E.g. an hourly cost:
    a control plane's fixed fee plus nodes x the node type's price, or an instance type's
    price plus its licence's."""

    kind: Literal["priced"]
    prices: dict[Identifier, dict[ShortText, Annotated[float, Field(ge=0, le=MAX_PARAM)]]] = Field(min_length=1, max_length=MAX_CATEGORIES)
    base: float = Field(default=0.0, ge=0, le=MAX_PARAM)
    times: Identifier | None = None
    noise_sigma: float = Field(default=0.0, ge=0, le=10)
    decimals: int | None = Field(default=None, ge=0, le=9)


class UpstreamSample(Model):
    """A key of the referenced entity created before the row that field `of` points at (the
    same entity), uniform or zipf-skewed toward the oldest rows. Edges drawn this way always
    point from newer to older rows, so the graph they form has no cycle; a row whose `of`
    points at the very first row has no upstream and is not written."""

    kind: Literal["upstream"]
    of: Identifier
    skew: Literal["uniform", "zipf"] = "uniform"
    zipf_a: float = Field(default=1.2, gt=1.0, le=100.0)


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
    | ProductSample
    | EmailSample
    | ShapedSample
    | DegradationSample
    | RemainingLifeSample
    | PricedSample
    | UpstreamSample,
    Field(discriminator="kind"),
]
