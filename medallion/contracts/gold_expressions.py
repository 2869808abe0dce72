"""The arithmetic a gold metric may aggregate (`metrics[].expression`, e.g. `quantity * unit_price_eur`).

A deliberately small grammar, parsed here rather than handed to a SQL engine, so a scenario can
never smuggle SQL into the pipeline:

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := NUMBER | COLUMN | "-" factor | "(" expression ")"

COLUMN is a scenario identifier (`^[a-z][a-z0-9_]{0,62}$`), NUMBER a plain decimal (`2`, `0.21`).
The parse is a tree of tuples the gold job turns into Spark columns one node at a time.
"""

from __future__ import annotations

import re
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSION_DEPTH = 32

# ("column", name) | ("number", value) | ("negate", node) | (operator, left, right)
Node = tuple[Any, ...]

_TOKEN = re.compile(r"\s*(?:(?P<number>\d{1,18}(?:\.\d{1,18})?)|(?P<column>[a-z][a-z0-9_]{0,62})|(?P<op>[-+*/()]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(
                f"expression {text!r}: unexpected {text[position:position + 10].strip()!r} at character {position + 1}; "
                "only column names, numbers, + - * / and parentheses are allowed"
            )
        kind = next(k for k, v in match.groupdict().items() if v is not None)
        tokens.append((kind, match[kind]))
        position = match.end()
    return tokens


def parse(text: str) -> Node:
    """The tree of an expression; ValueError naming the problem and what is allowed."""
    if not text.strip() or len(text) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"an expression needs 1 to {MAX_EXPRESSION_CHARS} characters")
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None:
            raise ValueError(f"expression {text!r} ends early; complete it")
        position += 1
        return token

    def expression(depth: int) -> Node:
        node = term(depth)
        while (token := peek()) is not None and token[1] in ("+", "-"):
            take()
            node = (token[1], node, term(depth))
        return node

    def term(depth: int) -> Node:
        node = factor(depth)
        while (token := peek()) is not None and token[1] in ("*", "/"):
            take()
            node = (token[1], node, factor(depth))
        return node

    def factor(depth: int) -> Node:
        if depth > MAX_EXPRESSION_DEPTH:
            raise ValueError(f"expression {text!r} nests deeper than {MAX_EXPRESSION_DEPTH} levels")
        kind, value = take()
        if kind == "number":
            return ("number", float(value))
        if kind == "column":
            return ("column", value)
        if value == "-":
            return ("negate", factor(depth + 1))
        if value == "(":
            node = expression(depth + 1)
            if take()[1] != ")":
                raise ValueError(f"expression {text!r}: a parenthesis is not closed")
            return node
        raise ValueError(f"expression {text!r}: {value!r} cannot start a value")

    tree = expression(0)
    if position != len(tokens):
        raise ValueError(f"expression {text!r}: unexpected {tokens[position][1]!r}; join values with + - * /")
    return tree


def columns(node: Node) -> list[str]:
    """The column names an expression reads, in order of appearance."""
    if node[0] == "column":
        return [str(node[1])]
    if node[0] == "number":
        return []
    found: list[str] = []
    for child in node[1:]:
        found += [c for c in columns(child) if c not in found]
    return found
