"""Limits, value helpers and the base model every scenario model shares."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

# The built-in scenarios ship inside the package (so a wheel install resolves `--scenario
# driving`); the checkout's configs/scenarios links here. $MEDALLION_SCENARIO_DIR points elsewhere.
BUILT_IN_SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIO_DIR = Path(os.environ.get("MEDALLION_SCENARIO_DIR") or BUILT_IN_SCENARIO_DIR)

# Identifiers that reach SQL (table, column, entity names) and paths must match this
# allowlist. `\Z`, not `$`: `$` also matches before a trailing newline.
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)\s*\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Environment variable names (export passwords are read from the variable a scenario names);
# pydantic's (Rust) regex: `$` is the true end of the text.
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,127}$"

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


def between(low: timedelta, high: timedelta = MAX_DURATION) -> AfterValidator:
    """Bounds of a Duration, spelled like the scenario ('1ms', '7d') in the error (pydantic's
    own ge/le would print timedelta reprs); `between_schema` states them in the JSON schema."""
    low_text, high_text = format_duration(low), format_duration(high)

    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(f"must be between {low_text} and {high_text}")
        return value

    return AfterValidator(check)


def between_schema(low: timedelta, high: timedelta = MAX_DURATION) -> Any:
    return Field(json_schema_extra={"minimumDuration": format_duration(low), "maximumDuration": format_duration(high)})


MILLISECOND = timedelta(milliseconds=1)
# A duration where 0 makes no sense (an interval, a window, a trigger): at least 1 ms, the
# clock's resolution (shorter ones round down to 0 ms).
PositiveDuration = Annotated[Duration, between(MILLISECOND), between_schema(MILLISECOND)]


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
MAX_PROFILES_COMBINED = 16
_PROFILE_LIST = r"^[a-z][a-z0-9_]{0,62}(,[a-z][a-z0-9_]{0,62}){0,15}"  # 15 = MAX_PROFILES_COMBINED - 1
_PROFILE_NAMES = re.compile(_PROFILE_LIST + r"\Z")


def _check_profile_names(value: Any) -> str:
    if not isinstance(value, str) or not _PROFILE_NAMES.match(value):
        raise ValueError(
            f"{short(value)} is not a profile name or a comma-separated list of them (e.g. small,cadence_5s; "
            f"at most {MAX_PROFILES_COMBINED})"
        )
    return value


# The profiles applied, in order: one name, or several joined by commas (`small,cadence_5s`).
ProfileNames = Annotated[
    str,
    Field(pattern=_PROFILE_LIST + "$"),
    BeforeValidator(_check_profile_names),
]
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
