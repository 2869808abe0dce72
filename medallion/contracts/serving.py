"""Serving silver entities relationally: the scenario's `export.serve` and `export.views`.

Gold tables reach the databases as aggregates; some users query the relational model itself.
`export.serve` names the silver entities the export also loads into every target, each with
a PRIMARY KEY (the entity's key) and FOREIGN KEYs to other served entities; `export.views`
names analytics queries from a fixed catalogue (no SQL text comes from the scenario) that the
export creates as views over them. This module holds the models, the checks and the order;
the SQL lives in `medallion.databases`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from medallion.contracts.scenario_base import MAX_ENTITIES, MAX_FIELDS, Identifier, Model

# The view that lists every served row whose foreign key finds no served parent: created
# whenever an entity is served with a foreign key; it returns no rows when the load is sound.
ORPHAN_VIEW = "orphaned_rows"

ViewName = Literal[
    "avg_transaction_value_per_user",
    "top_users_by_spend",
    "unique_customers_per_product",
    "users_with_transactions",
]

# What each catalogue view reads: served entity -> the fields it needs. A scenario asking for
# a view must serve these entities with these fields (checked when the scenario loads).
VIEW_NEEDS: dict[str, dict[str, tuple[str, ...]]] = {
    "avg_transaction_value_per_user": {
        "users": ("user_id", "name", "city"),
        "transactions": ("transaction_id", "user_id", "amount"),
    },
    "top_users_by_spend": {
        "users": ("user_id", "name"),
        "transactions": ("transaction_id", "user_id", "amount"),
    },
    "unique_customers_per_product": {
        "line_items": ("product", "quantity", "unit_price_eur", "line_total", "user_id"),
    },
    "users_with_transactions": {
        "users": ("user_id",),
        "transactions": ("transaction_id", "user_id"),
        "line_items": ("transaction_id",),
    },
}


class ServedEntity(Model):
    """A silver entity loaded as a table of its own: PRIMARY KEY on the entity's key, and one
    FOREIGN KEY per `foreign_keys` entry (column -> the served entity whose key it holds)."""

    entity: Identifier
    foreign_keys: dict[Identifier, Identifier] = Field(default_factory=dict, max_length=MAX_FIELDS)


def serving_problems(
    serve: Sequence[ServedEntity],
    views: Sequence[str],
    entities: Mapping[str, Any],  # name -> scenario Entity (scenario.py imports this module)
    exported_tables: Sequence[str],
) -> list[str]:
    """Every problem of `export.serve` / `export.views` against the scenario's entities, each
    naming the dotted path and the fix (empty when sound)."""
    problems: list[str] = []
    served = [s.entity for s in serve]
    if len(set(served)) != len(served):
        problems.append(f"export.serve: an entity is listed twice ({served}); list each once")
    for i, item in enumerate(serve):
        where = f"export.serve[{i}]"
        entity = entities.get(item.entity)
        if entity is None:
            problems.append(f"{where}.entity: unknown entity {item.entity!r}; expected one of {sorted(entities)}")
            continue
        if item.entity in exported_tables:
            problems.append(f"{where}.entity: {item.entity!r} is also an exported gold table; rename one of them")
        for column, parent in item.foreign_keys.items():
            path = f"{where}.foreign_keys.{column}"
            spec = entity.fields.get(column)
            if spec is None:
                problems.append(f"{path}: {item.entity} has no field {column!r}")
                continue
            if parent == item.entity:
                problems.append(f"{path}: a served entity cannot reference itself; drop this foreign key")
                continue
            if parent not in served:
                problems.append(f"{path}: {parent!r} is not served; add it to export.serve or drop the foreign key")
                continue
            if spec.references != parent:
                problems.append(
                    f"{path}: declare `references: {parent}` on entities.{item.entity}.fields.{column} "
                    "so silver checks the reference before it is served"
                )
            target = entities.get(parent)
            if target is not None and target.fields[target.key].type != spec.type:
                problems.append(
                    f"{path}: {column} is a {spec.type} but the key of {parent} is a {target.fields[target.key].type}"
                )
    if not problems and serve:
        try:
            serve_order(serve)
        except ValueError as exc:
            problems.append(f"export.serve: {exc}")
    for i, view in enumerate(views):
        for entity_name, columns in VIEW_NEEDS.get(view, {}).items():
            entity = entities.get(entity_name)
            if entity_name not in served or entity is None:
                problems.append(f"export.views[{i}]: {view} reads {entity_name!r}; add it to export.serve")
                continue
            missing = [c for c in columns if c not in entity.fields]
            if missing:
                problems.append(f"export.views[{i}]: {view} needs fields {missing} of {entity_name}")
    if len(set(views)) != len(views):
        problems.append(f"export.views: a view is listed twice ({list(views)}); list each once")
    return problems


def serve_order(serve: Sequence[ServedEntity]) -> list[str]:
    """Served entities parents first (every foreign key's target before its referrer), in the
    order of `export.serve` otherwise. ValueError naming the entities of a cycle."""
    by_name = {s.entity: s for s in serve}
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"foreign keys form a cycle through {[*visiting[visiting.index(name):], name]}; break it")
        visiting.append(name)
        for parent in by_name[name].foreign_keys.values():
            if parent in by_name and parent != name:
                visit(parent)
        visiting.pop()
        order.append(name)

    for item in serve[:MAX_ENTITIES]:
        visit(item.entity)
    return order
