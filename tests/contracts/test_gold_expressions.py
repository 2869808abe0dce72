"""The metric expression grammar: names, numbers, + - * / and parentheses, nothing else."""

from __future__ import annotations

import pytest

from medallion.contracts.gold_expressions import columns, parse


def test_precedence_and_columns() -> None:
    tree = parse("quantity * unit_price_eur - discount / 2")
    assert tree == ("-", ("*", ("column", "quantity"), ("column", "unit_price_eur")), ("/", ("column", "discount"), ("number", 2.0)))
    assert parse("-(a + 1.5) * b") == ("*", ("negate", ("+", ("column", "a"), ("number", 1.5))), ("column", "b"))
    assert columns(parse("a * (b + a) - c")) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("quantity; DROP TABLE x", "only column names, numbers"),
        ("sum(quantity)", "unexpected .\\(."),  # no function calls
        ("Quantity * 2", "only column names, numbers"),  # identifiers are lower-case
        ("'a' || 'b'", "only column names, numbers"),
        ("a * (b + c", "parenthesis is not closed|ends early"),
        ("a b", "unexpected 'b'"),
        ("a *", "ends early"),
        ("", "1 to 500 characters"),
        ("(" * 40 + "a" + ")" * 40, "nests deeper"),
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)
