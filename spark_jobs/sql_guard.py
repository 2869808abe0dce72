"""Vetting of the SQL a scenario carries (silver expectations, gold metric filters).

A scenario from elsewhere must not be able to run code through its SQL: `reflect` and
`java_method` call any Java method, `input_file_name` and table-valued functions read files,
subqueries read any table. Each expression is parsed by Spark's own parser (so what is vetted
is exactly what Spark will run: no second parser to disagree with it) and its Catalyst tree
is walked node by node against an allowlist: columns of the entity, literals, operators,
IS NULL / IN / BETWEEN / LIKE / CASE / CAST, and a vetted list of pure, deterministic scalar
functions. Anything else, including whatever a later Spark version adds, is refused.

`check_scenario(spark, scenario)` vets every expression of a scenario up front; the places
that turn scenario SQL into a Column (`expression`, `check_gold_table`) vet it again, so no
unvetted text reaches `F.expr` whichever way a job is started.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario import Entity, GoldTable, Scenario

# Catalyst node classes (getSimpleName) an expression may consist of, besides attributes
# and functions, which are checked by name below.
ALLOWED_NODES = frozenset(
    {
        "Literal",
        # arithmetic
        "Add", "Subtract", "Multiply", "Divide", "Remainder", "IntegralDivide", "UnaryMinus",
        "UnaryPositive", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
        # comparison and boolean logic
        "EqualTo", "EqualNullSafe", "LessThan", "LessThanOrEqual", "GreaterThan",
        "GreaterThanOrEqual", "And", "Or", "Not", "IsNull", "IsNotNull", "In",
        # LIKE patterns are not regular expressions: no catastrophic backtracking (RLIKE is out).
        "Like", "ILike", "LikeAny", "NotLikeAny", "LikeAll", "NotLikeAll",
        # CASE, CAST (also `::` and try_cast) and the special syntax of a few string functions
        "CaseWhen", "Cast", "Concat", "Substring", "StringTrim", "StringTrimLeft",
        "StringTrimRight", "StringTrimBoth", "StringLocate",
    }
)  # fmt: skip

# Pure, deterministic scalar functions (gold is recomputed from silver by `verify`, so no
# current_date or rand); none reads files, calls Java, allocates by an argument (repeat,
# lpad) or evaluates a regular expression. Aggregates and window functions are absent: a
# row filter is evaluated per row.
FUNCTIONS = frozenset(
    {
        # conditionals and nulls
        "between", "coalesce", "nullif", "nvl", "nvl2", "ifnull", "if", "isnull", "isnotnull",
        "equal_null", "isnan", "nanvl", "greatest", "least",
        # strings
        "lower", "upper", "lcase", "ucase", "length", "char_length", "character_length",
        "octet_length", "trim", "ltrim", "rtrim", "btrim", "substr", "substring", "left", "right",
        "concat", "concat_ws", "startswith", "endswith", "contains", "instr", "locate",
        "position", "replace", "initcap", "split_part",
        # math
        "abs", "round", "bround", "floor", "ceil", "ceiling", "sqrt", "cbrt", "exp", "ln", "log",
        "log10", "log2", "pow", "power", "mod", "pmod", "sign", "signum", "negative", "positive",
        "try_add", "try_subtract", "try_multiply", "try_divide", "degrees", "radians",
        # dates and times
        "year", "quarter", "month", "day", "dayofmonth", "dayofweek", "dayofyear", "weekday",
        "weekofyear", "hour", "minute", "second", "date_trunc", "trunc", "to_date", "to_timestamp",
        "date_add", "date_sub", "datediff", "add_months", "months_between", "last_day",
        "extract", "date_part", "make_date", "timestamp_seconds", "timestamp_millis",
        "unix_seconds", "unix_millis", "unix_date", "date_from_unix_date",
    }
)  # fmt: skip

_REFUSED_WHY = {
    "ScalarSubquery": "subqueries are not allowed",
    "Exists": "subqueries are not allowed",
    "ListQuery": "subqueries are not allowed",
    "InSubquery": "subqueries are not allowed",
    "LateralSubquery": "subqueries are not allowed",
    "UnresolvedStar": "* is not allowed; name the columns",
    "WindowExpression": "window functions are not allowed in a row expression",
    "LambdaFunction": "lambda functions are not allowed",
    "NamedParameter": "parameters are not allowed",
    "PosParameter": "parameters are not allowed",
    "ExpressionWithUnresolvedIdentifier": "IDENTIFIER(...) is not allowed; name the column",
    "RLike": "regular expressions (RLIKE) are not allowed; use LIKE",
}
MAX_NODES = 2000  # a 4,000-character expression has far fewer


def _problem(field: str, text: str) -> str:
    return f"{field}: {text}"


def _clip(text: str, limit: int) -> str:
    """At most `limit` characters of a name or a list taken from the expression."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _vet_tree(root: Any, columns: frozenset[str], field: str) -> list[str]:
    """Problems of one parsed expression (an empty list when it is allowed)."""
    problems: list[str] = []
    stack = [root]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            return [_problem(field, f"the expression has more than {MAX_NODES} parts; simplify it")]
        kind = str(node.getClass().getSimpleName())
        if kind == "UnresolvedAttribute":
            parts = [str(p) for p in node.nameParts().mkString("\u0000").split("\u0000")]
            name = ".".join(parts)
            # Spark resolves column names case-insensitively; a dotted name would reach a
            # struct field, a table or a session variable.
            if len(parts) != 1 or parts[0].lower() not in columns:
                problems.append(
                    _problem(field, f"unknown column {_clip(name, 60)}; use one of {_clip(', '.join(sorted(columns)), 200)}")
                )
            continue
        if kind == "UnresolvedFunction":
            parts = str(node.nameParts().mkString("\u0000")).split("\u0000")
            name = ".".join(parts).lower()
            if len(parts) != 1 or name not in FUNCTIONS:
                problems.append(_problem(field, f"function {_clip(name, 60)} is not allowed in scenario SQL"))
                continue
            if bool(node.isDistinct()):
                problems.append(_problem(field, f"DISTINCT in {name}(...) is not allowed"))
                continue
        elif kind not in ALLOWED_NODES:
            why = _REFUSED_WHY.get(kind, f"{_clip(kind, 60)} is not allowed in scenario SQL")
            problems.append(_problem(field, why))
            continue
        children = node.children().iterator()
        while children.hasNext():
            stack.append(children.next())
    return problems


def vet(spark: SparkSession, text: str, columns: Iterable[str], field: str) -> list[str]:
    """Problems of one scenario SQL expression (empty when allowed), each naming `field`.

    Args:
        spark: a session; only its SQL parser is used (nothing is analysed or run).
        text: the expression as written in the scenario.
        columns: the names the expression may refer to (compared case-insensitively).
        field: the scenario path to name in problems, e.g. `entities.trips.expectations[2].sql`.
    """
    key = (text, frozenset(c.lower() for c in columns), field)
    # Micro-batches rebuild the same expressions: each is parsed and walked once a process.
    if key not in _VETTED:
        if len(_VETTED) >= 1024:
            _VETTED.clear()
        _VETTED[key] = _vet_uncached(spark, *key)
    return list(_VETTED[key])


_VETTED: dict[tuple[str, frozenset[str], str], tuple[str, ...]] = {}


def _vet_uncached(spark: SparkSession, text: str, columns: frozenset[str], field: str) -> tuple[str, ...]:
    parser = spark._jsparkSession.sessionState().sqlParser()
    try:
        tree = parser.parseExpression(text)
    except Exception as exc:  # any parser failure (py4j or pyspark's wrapper) means "not valid"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (_problem(field, f"not a valid SQL expression: {_clip(first, 200)}"),)
    return tuple(_vet_tree(tree, columns, field))


def scenario_expressions(scenario: Scenario) -> list[tuple[str, str, list[str]]]:
    """(field path, SQL text, allowed columns) of every SQL expression in a scenario."""
    found: list[tuple[str, str, list[str]]] = []
    for name, entity in scenario.entities.items():
        for i, expectation in enumerate(entity.expectations):
            found.append((f"entities.{name}.expectations[{i}].sql", expectation.sql, list(entity.fields)))
    for i, gold in enumerate(scenario.gold):
        source = scenario.entities.get(gold.source)
        columns = [*(source.fields if source else []), *(c for lookup in gold.lookups for c in lookup.columns)]
        columns += ["window_start", "window_end"]
        for j, metric in enumerate(gold.metrics):
            if metric.where is not None:
                found.append((f"gold[{i}].metrics[{j}].where", metric.where, columns))
    return found


def check_scenario(spark: SparkSession, scenario: Scenario) -> None:
    """Raise ConfigError listing every disallowed SQL expression of the scenario."""
    problems: list[str] = []
    for field, text, columns in scenario_expressions(scenario):
        problems += vet(spark, text, columns, field)
    if problems:
        raise ConfigError(f"scenario {scenario.name!r}", problems[:20])


def expression(spark: SparkSession, entity: Entity, expectation_name: str, text: str) -> Column:
    """The Column of an entity's expectation, after vetting it (ConfigError if refused)."""
    names = [e.name for e in entity.expectations]
    index = names.index(expectation_name) if expectation_name in names else "?"
    field = f"expectations[{index}].sql ({expectation_name})"
    problems = vet(spark, text, entity.fields, field)
    if problems:
        raise ConfigError("scenario", problems)
    return F.expr(text)


def check_gold_table(spark: SparkSession, gold: GoldTable, columns: Iterable[str]) -> None:
    """Vet the `where` filters of a gold table's metrics over the columns it aggregates."""
    allowed = [c for c in columns if not c.startswith("_")]  # pipeline bookkeeping, not data
    problems: list[str] = []
    for j, metric in enumerate(gold.metrics):
        if metric.where is not None:
            problems += vet(spark, metric.where, allowed, f"gold.{gold.name}.metrics[{j}].where ({metric.name})")
    if problems:
        raise ConfigError("scenario", problems)
