"""The SELECTs behind the export's views over served silver entities (`export.views`).

A fixed catalogue (the names in `medallion.contracts.serving.ViewName`): the analytics queries
the shop's own database answered, over `users`, `transactions` and `line_items`, plus the
orphan check built from the served foreign keys. No SQL text comes from a scenario; every
name goes through the dialect's `quote` (the identifier allowlist).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from medallion.contracts.errors import IdentifierError
from medallion.contracts.serving import ORPHAN_VIEW
from medallion.databases.dialects import Dialect, ForeignKey, check_identifier


def _avg_transaction_value_per_user(d: Dialect) -> str:
    q = d.quote
    return (
        f"SELECT u.{q('user_id')}, u.{q('name')}, u.{q('city')},\n"
        f"  AVG(t.{q('amount')}) AS {q('avg_transaction_value')},\n"
        f"  COUNT(t.{q('transaction_id')}) AS {q('transaction_count')}\n"
        f"FROM {q('users')} u JOIN {q('transactions')} t ON u.{q('user_id')} = t.{q('user_id')}\n"
        f"GROUP BY u.{q('user_id')}, u.{q('name')}, u.{q('city')}"
    )


def _top_users_by_spend(d: Dialect) -> str:
    q = d.quote
    # COALESCE: users without transactions rank last on both kinds (NULLs sort differently).
    spend = f"COALESCE(SUM(t.{q('amount')}), 0)"
    return (
        f"SELECT u.{q('user_id')}, u.{q('name')},\n"
        f"  COUNT(t.{q('transaction_id')}) AS {q('transaction_count')},\n"
        f"  {spend} AS {q('total_spend')}\n"
        f"FROM {q('users')} u LEFT JOIN {q('transactions')} t ON u.{q('user_id')} = t.{q('user_id')}\n"
        f"GROUP BY u.{q('user_id')}, u.{q('name')}\n"
        f"ORDER BY {spend} DESC, u.{q('user_id')}\n"
        "LIMIT 10"
    )


def _unique_customers_per_product(d: Dialect) -> str:
    q = d.quote
    return (
        f"SELECT li.{q('product')},\n"
        f"  SUM(li.{q('quantity')}) AS {q('total_quantity')},\n"
        f"  AVG(li.{q('unit_price_eur')}) AS {q('avg_unit_price_eur')},\n"
        f"  SUM(li.{q('line_total')}) AS {q('revenue')},\n"
        f"  COUNT(DISTINCT li.{q('user_id')}) AS {q('unique_customers')}\n"
        f"FROM {q('line_items')} li\n"
        f"GROUP BY li.{q('product')}"
    )


def _users_with_transactions(d: Dialect) -> str:
    q = d.quote
    return (
        f"SELECT 'users_with_transactions' AS {q('metric')}, COUNT(DISTINCT u.{q('user_id')}) AS {q('value')}\n"
        f"FROM {q('users')} u JOIN {q('transactions')} t ON u.{q('user_id')} = t.{q('user_id')}\n"
        "UNION ALL\n"
        f"SELECT 'transactions_with_line_items', COUNT(DISTINCT t.{q('transaction_id')})\n"
        f"FROM {q('transactions')} t JOIN {q('line_items')} li ON t.{q('transaction_id')} = li.{q('transaction_id')}"
    )


CATALOGUE: dict[str, Callable[[Dialect], str]] = {
    "avg_transaction_value_per_user": _avg_transaction_value_per_user,
    "top_users_by_spend": _top_users_by_spend,
    "unique_customers_per_product": _unique_customers_per_product,
    "users_with_transactions": _users_with_transactions,
}


def view_select(dialect: Dialect, name: str) -> str:
    """The SELECT of a catalogue view."""
    try:
        return CATALOGUE[name](dialect)
    except KeyError:
        raise IdentifierError(f"no view named {name!r}; expected one of {sorted(CATALOGUE)}") from None


def orphan_select(dialect: Dialect, tables: Sequence[tuple[str, str, Sequence[ForeignKey]]]) -> str:
    """One row per served row whose foreign key is set but finds no parent row:
    (`table_name`, `column_name`, `key_value`). `tables`: (table, its key column, its foreign keys).
    Empty when the load is sound; a foreign key constraint makes that so in the database."""
    q = dialect.quote
    parts = []
    for table, key, foreign_keys in tables:
        for fk in foreign_keys:
            # Names that pass the allowlist hold no quote, so they are safe as string literals.
            check_identifier(table, "table name")
            check_identifier(fk.column, "column name")
            parts.append(
                f"SELECT '{table}' AS {q('table_name')}, '{fk.column}' AS {q('column_name')}, "
                f"{dialect.text_cast(f'c.{q(key)}')} AS {q('key_value')}\n"
                f"FROM {q(table)} c LEFT JOIN {q(fk.parent)} p ON c.{q(fk.column)} = p.{q(fk.parent_key)}\n"
                f"WHERE c.{q(fk.column)} IS NOT NULL AND p.{q(fk.parent_key)} IS NULL"
            )
    if not parts:
        raise IdentifierError(f"the {ORPHAN_VIEW} view needs at least one served foreign key")
    return "\nUNION ALL\n".join(parts)
