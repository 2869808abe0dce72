"""Scenario models: the YAML contract both the generator and the Spark jobs are driven by.

A scenario file declares entities (schema, arrival process, defects), silver expectations, gold
aggregates, export targets and pipeline settings. It is validated by pydantic v2 models with
`extra="forbid"` so a typo fails before anything is written, naming the field and the fix.
Profiles (`--profile NAME[,NAME...]`) are overlays deep-merged onto the file before validation,
left to right (a later profile wins).
"""


from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from medallion.contracts import gold_expressions
from medallion.contracts.defects import DefectKind
from medallion.contracts.sampler_specs import (
    Sample,
)
from medallion.contracts.scenario_base import (
    ENV_NAME,
    IDENTIFIER,
    MAX_BASELINE,
    MAX_BATCH_ID,
    MAX_CATEGORIES,
    MAX_ENTITIES,
    MAX_FIELDS,
    MAX_INTERVAL,
    MAX_JSON_DEPTH,
    MAX_LINE_BYTES,
    MAX_RATE,
    MAX_ROWS_PER_BATCH,
    MAX_RULES,
    MAX_SPAWN,
    MAX_TICKS_PER_BATCH,
    MILLISECOND,
    Duration,
    FieldType,
    Identifier,
    Instant,
    Model,
    Multiplier,
    PositiveDuration,
    ProfileNames,
    ShortText,
    SqlText,
    Text,
    between,
    between_schema,
    bounded_problems,
    format_duration,
    short,
)
from medallion.contracts.serving import ServedEntity, ViewName, serve_order, serving_problems


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

    # One rate per DefectKind but schema drift, which is scheduled change by change (`drift`).
    malformed_json: float = Field(default=0.0, ge=0, le=0.5)
    null_required: float = Field(default=0.0, ge=0, le=0.5)
    wrong_type: float = Field(default=0.0, ge=0, le=0.5)
    out_of_range: float = Field(default=0.0, ge=0, le=0.5)
    duplicate: float = Field(default=0.0, ge=0, le=0.5)
    late: float = Field(default=0.0, ge=0, le=0.5)
    out_of_order: float = Field(default=0.0, ge=0, le=0.5)
    orphan_fk: float = Field(default=0.0, ge=0, le=0.5)
    drift: list[DriftSpec] = Field(default_factory=list, max_length=MAX_RULES)

    def rate(self, kind: DefectKind) -> float:
        """The configured share of lines for one defect kind (schema drift: see `drift`)."""
        return float(getattr(self, kind)) if kind != DefectKind.SCHEMA_DRIFT else 0.0

    @property
    def enabled(self) -> bool:
        return any(self.rate(k) > 0 for k in DefectKind) or bool(self.drift)


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
        Duration, between(timedelta(seconds=1), timedelta(days=366)), between_schema(timedelta(seconds=1), timedelta(days=366))
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
    # Arithmetic over columns instead of one column, e.g. `quantity * unit_price_eur`: a small
    # grammar of names, numbers, + - * / and parentheses (medallion/contracts/gold_expressions.py).
    expression: str | None = Field(default=None, max_length=gold_expressions.MAX_EXPRESSION_CHARS)
    # Vetted against Spark's own parser when the pipeline starts (spark_jobs/sql_guard.py).
    where: SqlText | None = None
    percentile: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _complete(self) -> Metric:
        if self.column is not None and self.expression is not None:
            raise ValueError("give `column` or `expression`, not both")
        if self.expression is not None:
            gold_expressions.parse(self.expression)  # ValueError names the problem
        if self.agg != "count" and self.column is None and self.expression is None:
            raise ValueError(f"agg {self.agg!r} needs `column` (a silver column) or `expression` (e.g. quantity * unit_price_eur)")
        if self.agg == "percentile" and self.percentile is None:
            raise ValueError("agg 'percentile' needs `percentile`, e.g. 0.95")
        return self

    @property
    def columns_read(self) -> list[str]:
        """The silver (or lookup) columns the metric reads."""
        if self.expression is not None:
            return gold_expressions.columns(gold_expressions.parse(self.expression))
        return [self.column] if self.column else []


class Top(Model):
    """Keep only the `n` groups with the highest (`descending`) or lowest value of metric `by`
    within each `per` partition (a subset of group_by) and window; ties go to the smaller group
    keys. The table gains a `rank` column (1 = first)."""

    n: int = Field(ge=1, le=10_000)
    by: Identifier
    per: list[Identifier] = Field(default_factory=list, max_length=MAX_FIELDS)
    descending: bool = True


RANK_COLUMN = "rank"


class AnomalyFlags(Model):
    """Flag anomalous sensor readings instead of aggregating (docs/design.md §2.5, "Anomaly
    flags"): one gold row per (reading, sensor), judged against the other readings of its
    (group, window) cell. A reading repeated `stuck_run` times or more in a row is `stuck`;
    else one whose robust z-score (distance from the cell's median in units of 1.4826 x its
    median absolute deviation) reaches `z_threshold` is a `spike`."""

    key: Identifier  # the reading's key field (the source's key), kept as `reading_key`
    sensors: list[Identifier] = Field(min_length=1, max_length=MAX_FIELDS)
    unit: Identifier | None = None  # the column naming the unit (default: the first group_by)
    z_threshold: float = Field(default=5.0, gt=0, le=1000)
    stuck_run: int = Field(default=4, ge=2, le=100_000)
    # Cells with fewer readings of a sensor flag no spikes (their median and MAD mean little).
    min_readings: int = Field(default=6, ge=1, le=100_000)
    # `verify` fails when the flags' recall (spike and stuck readings) or precision against the
    # manifests' anomalies falls below these; without them it only reports the figures.
    min_recall: float | None = Field(default=None, ge=0, le=1)
    min_precision: float | None = Field(default=None, ge=0, le=1)


class GoldTable(Model):
    """A gold aggregate: group keys x tumbling window (or the whole history: no `window`) x
    metrics, maintained by MERGE; with `top`, only the first n groups per partition; or, with
    `anomalies`, one row per reading and sensor flagging anomalous readings."""

    name: Identifier
    source: Identifier
    lookups: list[Lookup] = Field(default_factory=list, max_length=MAX_ENTITIES)
    group_by: list[Identifier] = Field(default_factory=list, max_length=MAX_FIELDS)
    window: Window | None = None
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_RULES)
    top: Top | None = None
    anomalies: AnomalyFlags | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _shape(self) -> GoldTable:
        if self.anomalies is None and not self.metrics:
            raise ValueError("a gold table needs `metrics` (at least one), or `anomalies` to flag readings")
        if self.anomalies is not None:
            if self.metrics:
                raise ValueError("a gold table with `anomalies` flags readings and has no `metrics`; move them to another table")
            if self.top is not None:
                raise ValueError("a gold table with `anomalies` has no `top`: it ranks metrics, and flags are not metrics")
            if self.window is None:
                raise ValueError("`anomalies` needs a `window`: the cells whose readings are compared, e.g. 6h")
            if not self.group_by:
                raise ValueError("`anomalies` needs group_by: the unit whose readings are compared, e.g. [engine_id]")
            if self.anomalies.unit is not None and self.anomalies.unit not in self.group_by:
                raise ValueError(f"anomalies.unit {self.anomalies.unit!r} must be one of group_by {self.group_by}")
        if self.window is None and not self.group_by:
            raise ValueError("a lifetime aggregate (no `window`) needs group_by: its key")
        names = [m.name for m in self.metrics]
        reserved = {*self.group_by, "window_start", "window_end", *([RANK_COLUMN] if self.top else [])}
        clashes = sorted({n for n in names if n in reserved or names.count(n) > 1})
        if clashes:
            raise ValueError(f"metric names {clashes} repeat or clash with group_by/window/rank columns; rename them")
        if self.top is not None:
            if self.top.by not in names:
                raise ValueError(f"top.by: {self.top.by!r} is not a metric of the table ({names})")
            outside = [c for c in self.top.per if c not in self.group_by]
            if outside or len(self.top.per) >= len(self.group_by):
                raise ValueError("top.per must be a strict subset of group_by (the groups are ranked within it)")
        return self

    @property
    def anomaly_unit(self) -> str:
        """With `anomalies`: the column naming the unit (an engine)."""
        assert self.anomalies is not None
        return self.anomalies.unit or self.group_by[0]

    @property
    def anomaly_window(self) -> Window:
        """With `anomalies`: the window of the cells readings are judged in (required there)."""
        assert self.anomalies is not None and self.window is not None
        return self.window

    @property
    def key_columns(self) -> list[str]:
        """The gold table's primary key: group keys and the window start (lifetime: group keys;
        anomaly flags add the reading's key and the sensor: `reading_key`, `sensor`)."""
        if self.anomalies is not None:
            return [*self.group_by, "window_start", "reading_key", "sensor"]
        return [*self.group_by, "window_start"] if self.window is not None else list(self.group_by)

    @property
    def cell_columns(self) -> list[str]:
        """The columns naming what one recompute covers: a (group, window) cell, or with `top`
        a whole (partition, window), whose ranking a change anywhere in it may reorder."""
        groups = self.top.per if self.top is not None else self.group_by
        return [*groups, "window_start"] if self.window is not None else list(groups)


class DatabaseTarget(Model):
    """An external database for export. Without `url`, medallion starts a throwaway server.

    The password is never in the file: `password_env` names the environment variable holding it.
    """

    url: str | None = Field(default=None, max_length=2048)
    user: Identifier = "medallion"
    # The name of an environment variable (upper-case letters, digits, underscores).
    password_env: str = Field(default="MEDALLION_DB_PASSWORD", pattern=ENV_NAME)
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
    """Which gold tables (and, opt-in, which silver entities and views) reach which databases."""

    tables: list[Identifier] | None = Field(default=None, max_length=MAX_RULES)
    # Silver entities served as relational tables (PRIMARY and FOREIGN KEYs) and catalogue
    # views over them (medallion/contracts/serving.py); empty: gold only, as before.
    serve: list[ServedEntity] = Field(default_factory=list, max_length=MAX_ENTITIES)
    views: list[ViewName] = Field(default_factory=list, max_length=MAX_RULES)
    postgres: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_POSTGRES_PASSWORD"))
    mysql: DatabaseTarget = Field(default_factory=lambda: DatabaseTarget(password_env="MEDALLION_MYSQL_PASSWORD"))


class Pipeline(Model):
    """Streaming settings shared by the jobs."""

    trigger_interval: Annotated[
        Duration, between(MILLISECOND, timedelta(days=1)), between_schema(MILLISECOND, timedelta(days=1))
    ] = timedelta(seconds=10)
    max_files_per_trigger: int = Field(default=1000, ge=1, le=1_000_000)
    quality_threshold: float = Field(default=0.0, ge=0, le=1)
    # Silver's limits on one landing line: a longer line is quarantined as `line_too_long`, a
    # JSON value nested deeper as `too_deep` (each level of object or array counts; a flat
    # record is depth 1), rather than both passing for `malformed_json`.
    max_line_bytes: int = Field(default=1024 * 1024, ge=1, le=MAX_LINE_BYTES)
    max_json_depth: int = Field(default=64, ge=1, le=MAX_JSON_DEPTH)


class Clock(Model):
    """The simulated clock: batch b covers [start + b*interval, start + (b+1)*interval).

    With `live_interval`, the batches after the backfill are that long instead: batch
    B + k (B = backfill batches) covers [start + B*interval + k*live_interval, + live_interval),
    e.g. 90 days of hourly batches, then one batch per minute."""

    start: Instant
    interval: Annotated[Duration, between(MILLISECOND, MAX_INTERVAL), between_schema(MILLISECOND, MAX_INTERVAL)] = timedelta(minutes=15)
    speed: float = Field(default=0.0, ge=0, le=1_000_000)
    # Simulated time written as fast as possible before pacing at `speed` starts (e.g. 90d of
    # history, then live). Content never depends on it, only the pace of writing.
    backfill: Duration = timedelta(0)
    live_interval: (
        Annotated[Duration, between(MILLISECOND, MAX_INTERVAL), between_schema(MILLISECOND, MAX_INTERVAL)] | None
    ) = None

    @model_serializer(mode="wrap")
    def _omit_no_live_interval(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out when unset, so clocks written before it existed keep their config hash.
        data = handler(self)
        if self.live_interval is None and isinstance(data, dict):
            data.pop("live_interval", None)
        return data

    @property
    def backfill_batches(self) -> int:
        """Batches the backfill spans (written at once before pacing starts)."""
        backfill, interval = self.backfill.total_seconds(), self.interval.total_seconds()
        return int(-(-backfill // interval)) if backfill > 0 else 0

    def batch_interval_ms(self, batch: int) -> tuple[int, int]:
        """[start, end) of batch `batch` in epoch milliseconds."""
        start = int(self.start.timestamp() * 1000)
        interval = int(self.interval.total_seconds() * 1000)
        backfilled = self.backfill_batches
        if self.live_interval is None or batch < backfilled:
            begin = start + batch * interval
            return begin, begin + interval
        live = int(self.live_interval.total_seconds() * 1000)
        begin = start + backfilled * interval + (batch - backfilled) * live
        return begin, begin + live

    @field_validator("interval", "live_interval")
    @classmethod
    def _whole_ms(cls, value: timedelta | None) -> timedelta | None:
        # Batches are cut in whole milliseconds; 1.5 ms would silently become 1 ms.
        if value is not None and value.microseconds % 1000:
            raise ValueError(f"interval {short(str(value))} must be whole milliseconds, e.g. '15m'")
        return value


class Scenario(Model):
    """A whole scenario file, after its profile overlay."""

    name: Identifier
    description: Text = ""
    clock: Clock
    watermark_delay: Annotated[
        Duration, between(timedelta(0), timedelta(days=366)), between_schema(timedelta(0), timedelta(days=366))
    ] = timedelta(minutes=30)
    entities: dict[Identifier, Entity] = Field(min_length=1, max_length=MAX_ENTITIES)
    gold: list[GoldTable] = Field(default_factory=list, max_length=MAX_RULES)
    export: Export = Field(default_factory=Export)
    pipeline: Pipeline = Field(default_factory=Pipeline)
    # Overlays, each validated as a whole scenario when the file is loaded (see
    # `scenario_from_dict`), so a broken profile fails before anyone selects it.
    profiles: dict[Identifier, dict[str, Any]] = Field(default_factory=dict, max_length=MAX_RULES)
    profile: ProfileNames | None = None  # as applied: one name, or several comma-separated

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
            wanted = [*gold.group_by, *([gold.window.column] if gold.window else [])]
            wanted += [c for m in gold.metrics for c in m.columns_read]
            if gold.anomalies is not None:
                wanted += [*gold.anomalies.sensors, gold.anomalies.key]
                numeric = ("int", "long", "double")
                for sensor in gold.anomalies.sensors:
                    sensor_spec = source.fields.get(sensor)
                    if sensor_spec is not None and sensor_spec.type not in numeric:
                        problems.append(
                            f"gold.{gold.name}.anomalies.sensors: {sensor!r} is a {sensor_spec.type}; sensors are numeric fields"
                        )
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
        problems += serving_problems(self.export.serve, self.export.views, self.entities, self.export_tables)
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

    @property
    def served_entities(self) -> list[ServedEntity]:
        """`export.serve`, parents first (the order the export loads them in)."""
        by_name = {s.entity: s for s in self.export.serve}
        return [by_name[name] for name in serve_order(self.export.serve)]

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
        for name in _EXPORT_HASHED_WHEN_SET:
            if not dumped["export"][name]:
                del dumped["export"][name]
        for gold in dumped["gold"]:
            if gold["top"] is None:
                del gold["top"]
            for metric in gold["metrics"]:
                if metric["expression"] is None:
                    del metric["expression"]
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


_HASHED_WHEN_SET = ("max_line_bytes", "max_json_depth")
_EXPORT_HASHED_WHEN_SET = ("serve", "views")
