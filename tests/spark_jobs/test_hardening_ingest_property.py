"""A property of silver's line classifier: any line ends valid or with a reason, never an error.

Hypothesis draws lists of lines (valid records, records with one mutation, random JSON,
random bytes); each list is classified in one Spark pass, so a few examples cover hundreds of
lines at the cost of a few Spark jobs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion.contracts.scenario_loader import load_scenario
from spark_jobs.rules import LineLimits
from spark_jobs.silver import classify
from tests.support.generator import generate
from tests.support.text import is_utf8

pytestmark = pytest.mark.spark

EVENTS = load_scenario("driving").entities["driver_events"]
DRIVERS_OK = ["d-0000001", "d-0000002"]
# Small limits, so lines past them stay cheap to draw.
LIMITS = LineLimits(max_line_bytes=4096, max_json_depth=16)
VALID, TOO_LONG, TOO_DEEP, MALFORMED = "valid", "line_too_long", "too_deep", "malformed_json"

text = st.text(max_size=12)  # any code point but lone surrogates: `]`, `"`, `\`, `{` included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=6,
)


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENTS.fields["event_type"].enum or []))
    top_speed = 130.0 if event_type == "stopped_driving" else 250.0  # the `warn` expectation
    moment = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
    record: dict[str, Any] = {
        "event_id": draw(st.text(min_size=1, max_size=24)),
        "driver_id": draw(st.sampled_from(DRIVERS_OK)),
        "event_type": event_type,
        "event_time": moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "speed_kmh": draw(st.none() | st.floats(0.0, top_speed, exclude_max=True)),
        "latitude": draw(st.floats(-90.0, 90.0)),
        "longitude": draw(st.floats(-180.0, 180.0)),
    }
    version = draw(st.sampled_from([None, "<absent>", *(EVENTS.fields["app_version"].enum or [])]))
    if version != "<absent>":
        record["app_version"] = version
    keys = draw(st.permutations(list(record)))
    return {key: record[key] for key in keys}


@st.composite
def encoded(draw: st.DrawFn, record: Any) -> bytes:
    """A JSON value as one line, in one of the ways producers write it."""
    compact = draw(st.booleans())
    text_line = json.dumps(record, ensure_ascii=draw(st.booleans()), separators=(",", ":") if compact else None)
    pad = st.sampled_from(["", " ", "\t", "  "])
    return (draw(pad) + text_line + draw(pad)).encode("utf-8")


def nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"n": value}
    return value


@st.composite
def lines(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """(line, the fate it must get, or None when only the general property applies)."""
    kind = draw(st.sampled_from(
        ["valid", "wrong_type", "missing", "deep", "long", "invalid_utf8", "trailing", "json", "bytes"]))
    record = draw(valid_records())
    field = draw(st.sampled_from(sorted(EVENTS.fields)))
    if kind == "valid":
        return draw(encoded(record)), VALID
    if kind == "wrong_type":
        record[field] = draw(json_values)
        return draw(encoded(record)), None
    if kind == "missing":
        record.pop(draw(st.sampled_from(sorted(record))))
        return draw(encoded(record)), None
    if kind == "deep":
        depth = draw(st.integers(1, 40))
        record[field] = nest(1, depth, draw(st.booleans()))
        line = draw(encoded(record))
        # The record itself is a level: a field nested `depth` levels sits at depth + 1.
        return line, (TOO_DEEP if depth + 1 > LIMITS.max_json_depth else None)
    if kind == "long":
        record[field] = "x" * draw(st.integers(0, 2 * LIMITS.max_line_bytes))
        line = draw(encoded(record))
        return line, (TOO_LONG if len(line) > LIMITS.max_line_bytes else None)
    if kind == "invalid_utf8":
        line = draw(encoded(record))
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from([b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80"])) + line[at:]
        return line, (TOO_LONG if len(line) > LIMITS.max_line_bytes else MALFORMED)
    if kind == "trailing":
        garbage = draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="{}[] \t\r\n"), min_size=1, max_size=8))
        return draw(encoded(record)) + garbage.encode("utf-8"), MALFORMED
    if kind == "json":
        return draw(encoded(draw(json_values))), None
    return draw(st.binary(max_size=80)), None


# No shrinking: each try is a Spark job; a failure names its line in the assertion instead.
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.lists(lines(), min_size=20, max_size=40))
def test_every_line_is_valid_or_has_a_reason_and_valid_lines_stay_valid(
    spark: SparkSession, drawn: list[tuple[bytes, str | None]]
) -> None:
    rows = [(line, "file:/x/landing/driver_events/driver_events-b000001-p00.jsonl", 1) for line, _ in drawn]
    df = spark.createDataFrame(rows, "_raw binary, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.current_timestamp()
    )
    keys = spark.createDataFrame([(d,) for d in DRIVERS_OK], "_ref_key string")
    classified = df.transform(classify(EVENTS, {"drivers": keys}, LIMITS))
    collected = classified.select("_raw", "_line", "_reasons", "_action", "_key").collect()
    assert sorted(bytes(r["_raw"]) for r in collected) == sorted(line for line, _ in drawn)  # nothing lost or changed
    out = {bytes(r["_raw"]): r for r in collected}
    for line, fate in drawn:
        row = out[line]
        reasons, action = row["_reasons"], row["_action"]
        assert action in ("valid", "quarantine", "drop"), line
        assert all(isinstance(r, str) and r for r in reasons), line
        assert reasons or action == "valid", line
        assert action == "valid" or reasons, line
        within = len(line) <= LIMITS.max_line_bytes
        assert row["_line"] == (line.decode("utf-8") if within and is_utf8(line) else None), line
        if fate == VALID:
            assert (reasons, action) == ([], "valid"), line
        elif fate is not None:
            assert reasons == [fate], line




# --- the fast path agrees with the full classification -------------------------------------

# Mostly what producers write (printable text, short decimals, ISO times), with the characters
# and number forms at the border of the fast path mixed in.
plain_text = st.text(alphabet=st.sampled_from([*"abcXYZ019 -_.:"] * 6 + [*'"\\/\n\x01é\u2028😀']), max_size=10)
plain_values = {
    "string": plain_text,
    "double": st.one_of(*[st.decimals(-10**6, 10**6, places=3, allow_nan=False, allow_infinity=False).map(float)] * 8,
                        st.integers(-10**16, 10**16), st.floats(allow_nan=False, allow_infinity=False)),
    "timestamp": st.one_of(*[st.datetimes(min_value=datetime(1, 1, 1)).map(lambda d: d.isoformat() + draw_zone(d))] * 4, plain_text),
}


def draw_zone(moment: datetime) -> str:
    return "Z" if moment.microsecond % 2 else "+01:30"


@st.composite
def plain_lines(draw: st.DrawFn) -> bytes:
    """Lines in the form producers write (compact, declared order), with values of every kind a
    field may hold and one mutation now and then: most take the fast path, the rest border it."""
    record: dict[str, Any] = {}
    for name, spec in EVENTS.fields.items():
        choice = draw(st.sampled_from(["value"] * 12 + ["null", "absent", "other"]))
        if choice == "value":
            record[name] = draw(plain_values[spec.type])
        elif choice == "null":
            record[name] = None
        elif choice == "other":
            record[name] = draw(json_values)
    if "event_type" in record and draw(st.booleans()):
        record["event_type"] = draw(st.sampled_from(EVENTS.fields["event_type"].enum or []))
    if "driver_id" in record and draw(st.booleans()):
        record["driver_id"] = draw(st.sampled_from([*DRIVERS_OK, "d-9"]))
    line = json.dumps(record, ensure_ascii=draw(st.sampled_from([False, False, True])), separators=(",", ":"), allow_nan=False)
    ending = draw(st.sampled_from([""] * 12 + [" ", "\r", "\u2028", "\u0085", "x", ",", "}"]))
    return (line + ending).encode("utf-8")


COMPARED = ["_raw", "_line", "_key", "_malformed", "_too_long", "_too_deep", "_reasons", "_kinds", "_action", "_fail",
            *EVENTS.fields]


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.lists(st.one_of(plain_lines(), plain_lines(), plain_lines(), lines().map(lambda drawn: drawn[0])), min_size=60, max_size=120))
def test_the_fast_path_classifies_every_line_as_the_full_path_does(spark: SparkSession, drawn: list[bytes]) -> None:
    from spark_jobs.rules import ABSENT, NULL

    rows = [(line, "file:/x/landing/driver_events/driver_events-b000001-p00.jsonl", 1) for line in drawn]
    df = spark.createDataFrame(rows, "_raw binary, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.lit(datetime(2026, 1, 5, tzinfo=UTC))
    )
    keys = spark.createDataFrame([(d,) for d in DRIVERS_OK], "_ref_key string")
    # A field's state: the fast path does not tell an absent field from a null one (see its docstring).
    states = [F.when(F.col(f"_s_{n}") == ABSENT, NULL).otherwise(F.col(f"_s_{n}")).alias(f"_s_{n}") for n in EVENTS.fields]

    def outcome(fast_path: bool) -> dict[bytes, tuple[Any, ...]]:
        classified = df.transform(classify(EVENTS, {"drivers": keys}, LIMITS, fast_path=fast_path))
        return {bytes(r["_raw"]): tuple(r) for r in classified.select(*COMPARED, *states).collect()}

    fast, full = outcome(True), outcome(False)
    # Lines at the border of the fast path, on either side of it (the generated batches of the
    # next test are the ones that take it in bulk).
    assert fast.keys() == full.keys() == set(drawn)
    for line in drawn:
        assert fast[line] == full[line], line


def test_the_fast_path_classifies_generated_batches_as_the_full_path_does(spark: SparkSession, tmp_path: Path) -> None:
    """Every defect the generator makes, in the lines it writes (the lines the fast path is for)."""
    from spark_jobs.rules import ABSENT, NULL, is_fast_line

    generate(tmp_path, "driving", 3, 3, "small")
    drawn = [line.rstrip(b"\n") for path in sorted((tmp_path / "landing" / "driver_events").glob("*.jsonl"))
             for line in path.read_bytes().splitlines(keepends=True)]
    rows = [(line, "file:/x/landing/driver_events/driver_events-b000001-p00.jsonl", 1) for line in drawn]
    df = spark.createDataFrame(rows, "_raw binary, _source_file string, _batch_id long").withColumn(
        "_ingested_at", F.lit(datetime(2026, 1, 5, tzinfo=UTC))
    )
    keys = spark.createDataFrame([(d,) for d in ["d-0000001", "d-0000002", "d-0000003"]], "_ref_key string")
    states = [F.when(F.col(f"_s_{n}") == ABSENT, NULL).otherwise(F.col(f"_s_{n}")).alias(f"_s_{n}") for n in EVENTS.fields]

    def outcome(fast_path: bool) -> list[tuple[Any, ...]]:
        classified = df.transform(classify(EVENTS, {"drivers": keys}, LIMITS, fast_path=fast_path))
        return sorted((tuple(r) for r in classified.select(*COMPARED, *states).collect()), key=repr)

    took_fast = df.where(is_fast_line(EVENTS, LIMITS)).count()
    assert took_fast >= 0.9 * len(drawn)  # producers' lines: nearly all take the fast path
    quarantined = df.transform(classify(EVENTS, {"drivers": keys}, LIMITS)).where(F.col("_action") != "valid").count()
    assert quarantined > 0  # the defects are in the comparison too
    assert outcome(True) == outcome(False)
