"""Silver's rules: derived from the scenario schema, plus its declared SQL expectations.

`rules_for(entity)` is the catalogue (pure Python: names, the defect kind each catches, the
action); each schema rule is a `SilverCheck` of the defect vocabulary (medallion/contracts/defects.py),
which names it and gives its kind. The column builders classify each raw line strictly from its JSON, because Spark's
own reader accepts trailing garbage and folds wrong types into `_corrupt_record` (docs/design.md §5.1):

- `line_too_long`: a line of more than `pipeline.max_line_bytes` bytes (not inspected further);
- `too_deep`: JSON nested deeper than `pipeline.max_json_depth` (not parsed);
- `malformed_json`: invalid UTF-8, not parseable, trailing content after the object, or not
  an object;
- `<field>_required`: a required field absent or null;
- `<field>_type`: a value that cannot be converted to the field's type (e.g. "n/a" for a
  number, an object for a string);
- `schema_drift`: a value in another JSON type that *would* convert ("12.5" for a double, a
  number for a string, epoch seconds for a timestamp) - a producer changed its schema, so we
  quarantine instead of casting silently - or a renamed field (a declared field absent while
  an undeclared one is present);
- `<field>_range` / `<field>_enum`: outside the declared range or categories;
- `<field>_fk`: a reference to a key the referenced dimension's silver table does not hold;
- each expectation by its own name, with its own action.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.defects import SilverCheck
from medallion.contracts.scenario import Entity, FieldSpec, Scenario
from spark_jobs import sql_guard
from spark_jobs.expression_cache import built_once

QUARANTINE, DROP, WARN, FAIL = "quarantine", "drop", "warn", "fail"
INTEGRAL = ("TINYINT", "SMALLINT", "INT", "BIGINT")
# Strings, escapes included, then innermost {...} / [...] groups, reduce to "X"; a line that is
# exactly one JSON object reduces to a single "X". Only lines holding a `]` need it (see
# `with_parsed_json`).
# Possessive quantifiers: no backtracking, about twice as fast on long lines.
_JSON_STRING = r'"(?:[^"\\]++|\\.)*+"'
_INNERMOST_GROUP = r"\{[^{}\[\]]*+\}|\[[^{}\[\]]*+\]"
# Records are flat (scalar fields); 3 levels leave room for a wrong-typed object or array value.
MAX_NESTING = 3

EXPECTATION = "expectation"  # the kind of a declared expectation's rule in the quality table


@dataclass(frozen=True)
class LineLimits:
    """What a line may be before it is not parsed: its size in bytes and its JSON nesting depth
    (a top-level object is depth 1). From the scenario's `pipeline` section."""

    max_line_bytes: int = 1 << 20
    max_json_depth: int = 64

    @classmethod
    def of(cls, scenario: Scenario) -> LineLimits:
        """The scenario's limits (`pipeline.max_line_bytes`, `pipeline.max_json_depth`)."""
        return cls(scenario.pipeline.max_line_bytes, scenario.pipeline.max_json_depth)


DEFAULT_LIMITS = LineLimits()


@dataclass(frozen=True)
class Rule:
    """One silver rule: a schema check (`check`, on `field` for the per-field ones) or a declared
    expectation (`sql`, no check). Its name is the reason it writes in quarantine."""

    name: str
    check: SilverCheck | None
    action: str = QUARANTINE
    field: str | None = None
    sql: str | None = None
    references: str | None = None

    @classmethod
    def derived(cls, check: SilverCheck, field: str | None = None, references: str | None = None) -> Rule:
        """The rule a schema check makes (on a field, for the per-field checks)."""
        return cls(check.rule_name(field), check, field=field, references=references)

    @property
    def kind(self) -> str:
        """The ledger defect kind the rule catches, or `expectation`: plain text, as the tables hold it."""
        return EXPECTATION if self.check is None else self.check.kind.value

    @property
    def schema_derived(self) -> bool:
        return self.check is not None


def rules_for(entity: Entity) -> list[Rule]:
    """Every rule of an entity, in the order reasons are listed."""
    rules = [Rule.derived(SilverCheck.MALFORMED_JSON), Rule.derived(SilverCheck.LINE_TOO_LONG), Rule.derived(SilverCheck.TOO_DEEP)]
    required = set(entity.required_fields)
    for name in entity.fields:
        if name in required:
            rules.append(Rule.derived(SilverCheck.REQUIRED, name))
        rules.append(Rule.derived(SilverCheck.TYPE, name))
    rules.append(Rule.derived(SilverCheck.SCHEMA_DRIFT))
    for name, spec in entity.fields.items():
        if spec.range is not None:
            rules.append(Rule.derived(SilverCheck.RANGE, name))
        if spec.enum is not None:
            rules.append(Rule.derived(SilverCheck.ENUM, name))
        if spec.references is not None:
            rules.append(Rule.derived(SilverCheck.FK, name, references=spec.references))
    for expectation in entity.expectations:
        rules.append(Rule(expectation.name, None, expectation.action, sql=expectation.sql))
    names = [rule.name for rule in rules]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        from medallion.contracts.errors import ConfigError

        raise ConfigError("expectations", [f"rule name(s) {sorted(duplicates)} clash with derived rules; rename them"])
    return rules


# --- parsing ------------------------------------------------------------------------------


def _json_space() -> Column:
    # JSON's whitespace: trim() alone takes spaces only, and a line led by a tab is valid.
    return F.lit(" \t\r\n")


def _single_object(text: Column) -> Column:
    """Whether a line (free of `]` inside its strings: see `with_parsed_json`) is exactly one
    object, nested at most MAX_NESTING levels (a deeper line holding a `]` counts as malformed)."""
    reduced = F.regexp_replace(text, _JSON_STRING, '""')
    for _ in range(MAX_NESTING):
        reduced = F.regexp_replace(reduced, _INNERMOST_GROUP, "X")
    return (F.trim(reduced, _json_space()) == F.lit("X")) & F.ltrim(text, _json_space()).startswith("{")


def _deeper_than(text: Column, max_depth: int) -> Column:
    """Whether JSON text nests objects/arrays more than `max_depth` levels.

    Only lines with more opening brackets than the limit can be that deep; only they are read,
    twice, by Spark's JSON reader: once with the limit as its nesting bound and once without a
    practical bound. Failing the first only is too deep; failing both is broken JSON (left to
    `malformed_json`). The expression stays small whatever the limit (a reduction per level
    made generated code pass the JVM's 64 KB method limit and fall back to the interpreter).
    """
    opening = F.length(text) - F.length(F.translate(text, "{[", ""))

    def unreadable(depth: int) -> Column:
        options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_c", "maxNestingDepth": str(depth)}
        return F.from_json(text, "_c string", options).getField("_c").isNotNull()

    return F.when(opening > F.lit(max_depth), unreadable(max_depth) & ~unreadable(1 << 30)).otherwise(F.lit(False))


def with_parsed_json(limits: LineLimits = DEFAULT_LIMITS) -> Callable[[DataFrame], DataFrame]:
    """Adds `_line` (the binary `_raw` as text; null unless valid UTF-8 and within the size
    limit, as in bronze), `_json` (the text the rules read: `_line`), `_v` (VARIANT of the line, null unless it is a
    well-formed object within the limits), `_malformed`, `_too_long` and `_too_deep`.

    The line is parsed wrapped in `[...]`: the parser stops after the first complete value, so
    unless the line itself holds a `]`, the wrapper can only close at its own last character -
    the whole line was read - and a second element means content after the object. Only the
    rare line with a `]` takes the exact (regex) test: wrapped, `{...}] junk` would pass.
    Size is tested before anything reads the line, depth before the parser (which has limits
    of its own, and would only say "not JSON").
    """

    def build() -> tuple[Column, ...]:
        raw = F.col("_raw")
        text = raw.cast("string")  # the same bytes; tested before any use as text
        too_long = F.coalesce(F.octet_length(raw) > F.lit(limits.max_line_bytes), F.lit(False))
        line_of_raw = F.when(~F.col("_too_long") & F.is_valid_utf8(text), text)
        line = F.col("_json")
        too_deep = F.coalesce(_deeper_than(line, limits.max_json_depth), F.lit(False))
        wrapped = F.when(~F.col("_too_deep"), F.try_parse_json(F.concat(F.lit("["), line, F.lit("]"))))
        one_value = F.col("_w").isNotNull() & F.try_variant_get(F.col("_w"), "$[1]", "variant").isNull()
        bracket_in_code = F.regexp_replace(line, _JSON_STRING, '""').contains("]")
        exact = F.when(line.contains("]") & bracket_in_code, _single_object(line)).otherwise(
            F.ltrim(line, _json_space()).startswith("{")
        )
        well_formed = line.isNotNull() & one_value & exact
        malformed = ~F.coalesce(well_formed, F.lit(False))
        value = F.when(~F.col("_malformed"), F.variant_get(F.col("_w"), "$[0]", "variant"))
        return too_long, line_of_raw, F.col("_line"), too_deep, wrapped, malformed, value

    def transform(df: DataFrame) -> DataFrame:
        too_long, line_of_raw, line, too_deep, wrapped, malformed, value = built_once("parsed_json", LineLimits, build, limits)  # equal limits: one build
        return (
            df.withColumn("_too_long", too_long)
            .withColumn("_line", line_of_raw)
            .withColumn("_json", line)
            .withColumn("_too_deep", too_deep)
            .withColumn("_w", wrapped)
            .withColumn("_malformed", malformed)
            .withColumn("_v", value)
            .drop("_w")
        )

    return transform


# A field's state in a line, one small code per field (`_s_<field>`): the rules compare it.
ABSENT, NULL, OK, DRIFT, WRONG = range(5)


# --- the fast path -------------------------------------------------------------------------

# A JSON value as the fast path accepts it, per field type: only forms whose typed value and
# state the full classification is known to agree on. Anything else (escapes like \u, exponents,
# numbers that may overflow, whitespace, fields out of order) takes the full path, which is
# exact for every line; the fast path only has to be exact for the lines it takes.
_FAST_VALUE = {
    "string": r'"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt])*+"',
    "int": r"-?(?:0|[1-9][0-9]{0,8})",  # at most 9 digits: always within INT
    "long": r"-?(?:0|[1-9][0-9]{0,17})",  # at most 18 digits: always within BIGINT
    "double": r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?",
    "boolean": r"(?:true|false)",
    "timestamp": r'"[^"\\\x00-\x1f]*+"',  # the text is cast as on the full path
    "date": r'"[^"\\\x00-\x1f]*+"',
}


def fast_line_pattern(entity: Entity) -> str:
    """A regex matching exactly the lines the fast path may take: one compact JSON object whose
    keys are the entity's fields in declared order, each once, required fields present and not
    null, optional ones absent, null or of the plain form above.

    Producers write records this way (the generator does); a line in any other form is not
    wrong, it only takes the full classification."""
    required = {*entity.required_fields, entity.key}  # a null key is scraped as text on the full path
    members = []
    for name, spec in entity.fields.items():
        value = _FAST_VALUE[spec.type]
        value = value if name in required else f"(?:{value}|null)"
        members.append((name in required, f'"{re.escape(name)}":{value}'))
    # An ordered list with optional members: one alternative per member that can come first
    # (those up to the first required one), the rest with a leading comma.
    alternatives = []
    for first, (is_required, member) in enumerate(members):
        rest = "".join(f",{m}" if req else f"(?:,{m})?" for req, m in members[first + 1:])
        alternatives.append(member + rest)
        if is_required:
            break
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    if not any(is_required for is_required, _ in members):
        body += "?"  # `{}` holds no field and breaks no rule a present field could
    # \z, not $: `$` also matches before a final line terminator such as U+2028, which JSON
    # does not take as whitespace.
    return r"^\{" + body + r"\}\z"


def is_fast_line(entity: Entity, limits: LineLimits = DEFAULT_LIMITS) -> Column:
    """Whether a line (binary `_raw`) takes the fast path: within the size limit, valid UTF-8
    and of the plain form `fast_line_pattern` describes (a flat object: depth 1)."""

    def build() -> Column:
        raw = F.col("_raw")
        text = raw.cast("string")
        within = F.octet_length(raw) <= F.lit(limits.max_line_bytes)
        return F.coalesce(within & F.is_valid_utf8(text) & text.rlike(fast_line_pattern(entity)), F.lit(False))

    return built_once("is_fast_line", entity, build, limits)


def with_fast_typed_fields(entity: Entity) -> Callable[[DataFrame], DataFrame]:
    """For lines `is_fast_line` took: the columns `with_parsed_json` and `with_typed_fields`
    add, from one `from_json` pass and no VARIANT, plus `_key`.

    The values come from the same `from_json` carrier and casts as on the full path. States:
    OK, NULL (null or absent: the rules tell them apart only for a renamed field, and a fast
    line holds no undeclared field) or, for a time that does not cast, WRONG."""
    def build() -> tuple[list[Column], list[Column]]:
        carrier = ", ".join(f"`{name}` {_carrier_type(spec)}" for name, spec in entity.fields.items())
        line = F.col("_raw").cast("string")
        staged = [line.alias("_line"), F.from_json(line, carrier).alias("_carried")]
        out = [
            F.lit(False).alias("_too_long"),
            F.col("_line"),
            F.col("_line").alias("_json"),
            F.lit(False).alias("_too_deep"),
            F.lit(False).alias("_malformed"),
            F.lit(None).cast("variant").alias("_v"),
        ]
        for name, spec in entity.fields.items():
            carried = F.col("_carried").getField(name)
            if spec.type in ("timestamp", "date"):
                value = carried.try_cast(spec.type)
                state = F.when(carried.isNull(), F.lit(NULL)).when(value.isNull(), F.lit(WRONG)).otherwise(F.lit(OK))
            else:
                value = carried
                state = F.when(carried.isNull(), F.lit(NULL)).otherwise(F.lit(OK))
            out += [value.cast(spec_type(spec)).alias(name), state.cast("tinyint").alias(f"_s_{name}")]
        out.append(F.col("_carried").getField(entity.key).cast("string").alias("_key"))
        return staged, out

    def transform(df: DataFrame) -> DataFrame:
        staged, out = built_once("fast_typed_fields", entity, build)
        return df.select("*", *staged).select(*df.columns, *out)

    return transform


# --- per-field checks ---------------------------------------------------------------------


def _jtype(name: str) -> Column:
    return F.col(f"_j_{name}")


def _carrier_type(spec: FieldSpec) -> str:
    """The type `from_json` reads a field in: its own type (a JSON value of the right kind
    converts directly), except timestamps and dates, which are read as text and cast."""
    return "string" if spec.type in ("timestamp", "date") else spec_type(spec)


def _classify_value(spec: FieldSpec, jf: Column, jtype: Column, carried: Column) -> tuple[Column, Column, Column]:
    """(typed value, ok, convertible-but-other-JSON-type) for one field.

    `jf` / `jtype` are the field's VARIANT value and JSON type; `carried` is the same field read
    by `from_json` in its carrier type. The typed value comes from `carried`: reading a number
    out of a VARIANT as another type builds a Cast per row, several times slower. The drift test
    reads the VARIANT, but only for values that are not ok (see `with_typed_fields`).
    """
    as_string = F.try_variant_get(jf, "$", "string")
    is_string = jtype == F.lit("STRING")
    numeric = jtype.isin(*INTEGRAL) | jtype.startswith("DECIMAL") | jtype.isin("DOUBLE", "FLOAT")
    kind = spec.type
    if kind == "string":
        return F.when(is_string, carried), is_string, numeric | (jtype == "BOOLEAN")
    if kind in ("int", "long"):
        target = "int" if kind == "int" else "bigint"
        integral = jtype.isin(*INTEGRAL) | jtype.rlike(r"^DECIMAL\(\d+,0\)$")
        ok = integral & carried.isNotNull()
        return F.when(ok, carried), ok, is_string & as_string.try_cast(target).isNotNull()
    if kind == "double":
        ok = numeric & carried.isNotNull()
        return F.when(ok, carried), ok, is_string & as_string.try_cast("double").isNotNull()
    if kind == "boolean":
        ok = jtype == F.lit("BOOLEAN")
        drift = is_string & F.lower(as_string).isin("true", "false")
        return F.when(ok, carried), ok, drift
    if kind in ("timestamp", "date"):
        parsed = F.when(is_string, carried).try_cast(kind)
        ok = parsed.isNotNull()
        return F.when(ok, parsed), ok, numeric
    raise ValueError(f"unsupported field type {kind!r}")


def with_typed_fields(entity: Entity) -> Callable[[DataFrame], DataFrame]:
    """Adds each field as its typed value plus its state `_s_<field>`, which the rules read:
    ABSENT (key not in the object), NULL (JSON null), OK, DRIFT (a convertible value of another
    JSON type) or WRONG (not convertible).

    One CASE per field, so the costly drift test (e.g. a number printed and re-parsed) only
    runs for values that are not OK: as separate columns, Spark's common-subexpression
    elimination would hoist it out of the short-circuit and run it on every line.
    """
    def build() -> tuple[list[Column], list[Column], list[Column]]:
        carrier = ", ".join(f"`{name}` {_carrier_type(spec)}" for name, spec in entity.fields.items())
        # Step 1: every field as a VARIANT (a lookup in the parsed line: cheaper than parsing
        # it again) and in its carrier type (one from_json pass); malformed lines keep none.
        well_formed = ~F.col("_malformed")
        first = [
            F.when(well_formed, F.from_json(F.col("_json"), carrier)).alias("_carried"),
            *[F.variant_get(F.col("_v"), f"$.{name}", "variant").alias(f"_jf_{name}") for name in entity.fields],
        ]
        second = [F.schema_of_variant(F.col(f"_jf_{name}")).alias(f"_j_{name}") for name in entity.fields]
        # Step 2: typed values and states.
        out: list[Column] = []
        for name, spec in entity.fields.items():
            jf, jtype = F.col(f"_jf_{name}"), _jtype(name)
            value, ok, drift = _classify_value(spec, jf, jtype, F.col("_carried").getField(name))
            state = (
                F.when(jf.isNull(), F.lit(ABSENT))
                .when(jtype == F.lit("VOID"), F.lit(NULL))
                .when(ok, F.lit(OK))
                .when(drift, F.lit(DRIFT))
                .otherwise(F.lit(WRONG))
            )
            out += [value.cast(spec_type(spec)).alias(name), state.cast("tinyint").alias(f"_s_{name}")]
        return first, second, out

    def transform(df: DataFrame) -> DataFrame:
        first, second, out = built_once("typed_fields", entity, build)
        return df.select("*", *first).select("*", *second).select(*df.columns, *out)

    return transform


def _state(name: str, *states: int) -> Column:
    return F.col(f"_s_{name}").isin(*states)


def spec_type(spec: FieldSpec) -> str:
    """The Spark SQL type name of a field."""
    return {"string": "string", "int": "int", "long": "bigint", "double": "double",
            "boolean": "boolean", "timestamp": "timestamp", "date": "date"}[spec.type]


def with_foreign_key_checks(entity: Entity, dimension_keys: dict[str, DataFrame | None]) -> Callable[[DataFrame], DataFrame]:
    """Adds `_orphan_f` for each reference field: true when the key is unknown to the dimension.

    `dimension_keys[entity]` holds the referenced keys (one column named `_ref_key`), or None
    when that dimension has no silver table yet (then every reference is an orphan).
    """

    def transform(df: DataFrame) -> DataFrame:
        for name, spec in entity.fields.items():
            if spec.references is None:
                continue
            keys = dimension_keys.get(spec.references)
            if keys is None:
                df = df.withColumn(f"_orphan_{name}", F.col(name).isNotNull())
                continue
            alias = f"_ref_{name}"
            lookup = F.broadcast(keys.select(F.col("_ref_key").alias(alias)).distinct())
            df = (
                df.join(lookup, df[name] == F.col(alias), "left")
                .withColumn(f"_orphan_{name}", F.col(name).isNotNull() & F.col(alias).isNull())
                .drop(alias)
            )
        return df

    return transform


# --- rule results -------------------------------------------------------------------------


def rule_condition(rule: Rule, entity: Entity) -> Column:
    """True when a row breaks a schema-derived rule (check columns must exist)."""
    not_malformed = ~F.col("_malformed")
    field = rule.field or ""
    match rule.check:
        case SilverCheck.LINE_TOO_LONG:
            return F.col("_too_long")
        case SilverCheck.TOO_DEEP:
            return ~F.col("_too_long") & F.col("_too_deep")
        case SilverCheck.MALFORMED_JSON:
            return F.col("_malformed") & ~F.col("_too_long") & ~F.col("_too_deep")
        case SilverCheck.REQUIRED:
            return not_malformed & _state(field, ABSENT, NULL)
        case SilverCheck.TYPE:
            return not_malformed & _state(field, WRONG)
        case SilverCheck.SCHEMA_DRIFT:
            retyped = [_state(name, DRIFT) for name in entity.fields]
            absent = [_state(name, ABSENT) for name in entity.fields]
            declared = F.array(*[F.lit(n) for n in entity.fields])
            unknown = F.size(F.array_except(F.json_object_keys(F.col("_json")), declared)) > 0
            # `And` short-circuits: the object's keys are only listed when a declared field is absent.
            renamed = _any(absent) & unknown
            return not_malformed & (_any(retyped) | renamed)
        case SilverCheck.RANGE:
            low, high = entity.fields[field].range  # type: ignore[misc]
            value = F.col(field)
            return not_malformed & value.isNotNull() & ((value < F.lit(low)) | (value > F.lit(high)))
        case SilverCheck.ENUM:
            allowed = entity.fields[field].enum or []
            value = F.col(field)
            return not_malformed & value.isNotNull() & ~value.isin(*allowed)
        case SilverCheck.FK:
            return not_malformed & F.col(f"_orphan_{field}")
    raise ValueError(f"no condition for rule {rule.name}")


def _any(columns: list[Column]) -> Column:
    result = F.lit(False)
    for column in columns:
        result = result | F.coalesce(column, F.lit(False))
    return result


def _no_names() -> Column:
    return F.array().cast("array<string>")


def _names_where(pairs: list[tuple[str, Column]]) -> Column:
    none = _no_names()
    if not pairs:
        return none
    # array_compact is a higher-order function, evaluated row by row outside generated code:
    # only build the list for the few lines that break a rule.
    names = F.array_compact(F.array(*[F.when(cond, F.lit(name)) for name, cond in pairs]))
    return F.when(_any([cond for _, cond in pairs]), names).otherwise(none)


def with_rule_results(rules: list[Rule], entity: Entity) -> Callable[[DataFrame], DataFrame]:
    """Adds `_reasons` (every rule the row breaks, in catalogue order), `_kinds` and `_action`.

    Expectations are only evaluated on rows that pass every schema rule (their typed values
    are meaningful only then). `_action` is quarantine, drop or valid; `_fail` marks rows that
    broke an expectation whose action is `fail`.
    """
    schema_rules = [r for r in rules if r.schema_derived]
    expectations = [r for r in rules if not r.schema_derived]
    kind_of = {r.name: r.kind for r in rules}

    def build(spark: SparkSession) -> tuple[Column, ...]:
        schema_reasons = _names_where([(r.name, F.coalesce(rule_condition(r, entity), F.lit(False))) for r in schema_rules])
        schema_ok = F.size("_schema_reasons") == 0
        expectation_pairs = [
            (r.name, schema_ok & ~F.coalesce(sql_guard.expression(spark, entity, r.name, r.sql or "true"), F.lit(False)))
            for r in expectations
        ]
        reasons = F.concat(F.col("_schema_reasons"), _names_where(expectation_pairs))
        kinds = F.array_compact(
            F.array(*[F.when(F.array_contains("_reasons", name), F.lit(kind)) for name, kind in kind_of.items()])
        )
        quarantine = [r.name for r in rules if r.action == QUARANTINE]
        drop = [r.name for r in rules if r.action == DROP]
        fail = [r.name for r in rules if r.action == FAIL]
        # Most lines break no rule: settle them with one size test, not a search per rule.
        clean = F.size("_reasons") == 0
        action = (
            F.when(clean, F.lit("valid"))
            .when(_overlaps("_reasons", quarantine), F.lit(QUARANTINE))
            .when(_overlaps("_reasons", drop), F.lit(DROP))
            .otherwise(F.lit("valid"))
        )
        return (schema_reasons, reasons, F.when(clean, _no_names()).otherwise(F.array_distinct(kinds)), action,
                ~clean & _overlaps("_reasons", fail))

    def transform(df: DataFrame) -> DataFrame:
        # The rules are the entity's own (`rules_for`): they are part of what `entity` identifies.
        key = tuple((r.name, r.action, r.sql) for r in rules)
        schema_reasons, reasons, kinds, action, fail = built_once("rule_results", entity, lambda: build(df.sparkSession), key)
        return (
            df.withColumn("_schema_reasons", schema_reasons)
            .withColumn("_reasons", reasons)
            .withColumn("_kinds", kinds)
            .withColumn("_action", action)
            .withColumn("_fail", fail)
            .drop("_schema_reasons")
        )

    return transform


def _overlaps(column: str, names: list[str]) -> Column:
    if not names:
        return F.lit(False)
    return F.arrays_overlap(F.col(column), F.array(*[F.lit(n) for n in names]))


def key_of_raw(entity: Entity, limits: LineLimits = DEFAULT_LIMITS) -> Column:
    """The record's key as a string where the line still has one (also for malformed lines).

    A malformed line's key is looked for in its first `max_line_bytes` bytes, invalid UTF-8
    replaced (U+FFFD), so the key column only ever holds valid text.
    """

    def build() -> Column:
        parsed = F.try_variant_get(F.col("_v"), f"$.{entity.key}", "string")
        pattern = rf'"{entity.key}"\s*:\s*"?([^",}}]*)'
        head = F.make_valid_utf8(F.substring(F.col("_raw"), 1, limits.max_line_bytes).cast("string"))
        scraped = F.regexp_extract(head, pattern, 1)
        return F.coalesce(parsed, F.when(scraped != "", scraped))

    return built_once("key_of_raw", entity, build, limits)
