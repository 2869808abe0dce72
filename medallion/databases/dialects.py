"""SQL text for the two target kinds: quoting, column types, DDL, upsert, locks and the export ledger.

Pure string building (no driver, no Spark), so every statement the export runs, and every
difference between PostgreSQL and MySQL/MariaDB, is visible in one place. Every identifier that
reaches SQL from configuration goes through `quote`, which checks it against
`medallion.contracts.scenario_base.IDENTIFIER` first; medallion's own tables start with an
underscore, which that allowlist never admits, so they cannot collide with a gold table.
Statements with values return a `Statement` (SQL with `%s` placeholders and its parameters).
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

from medallion.contracts.errors import DatabaseError, IdentifierError
from medallion.contracts.scenario_base import IDENTIFIER

# The ledger of exported batches (docs/design.md §3.6), one row per committed export of one table:
#   export_id      increasing id (the latest row per table is the current state)
#   table_name     gold table name
#   delta_table_id Delta table id (a recreated gold table gets a new id -> full re-export)
#   delta_version  gold version the target now reflects
#   from_version   first version of the change feed read, NULL for a full snapshot
#   mode           'snapshot' (full sync) or 'changes' (Delta change data feed)
#   rows_upserted, rows_deleted   distinct keys written / removed in that batch
#   exported_at    commit time, UTC
# `rows` is a reserved word in MySQL 8, hence the rows_* names.
LEDGER_TABLE = "_medallion_exports"
STAGING_PREFIX = "_medallion_stage_"
OP_COLUMN = "_op"  # 'U' upsert / 'D' delete, only in staging tables
_INTERNAL = re.compile(r"^_medallion_[a-z0-9_]{1,50}$|^_op$")
_MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names silently; MySQL allows 64
_MAX_LOCK_NAME = 64  # MySQL's GET_LOCK refuses longer names
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")

LOGICAL_TYPES = (
    "string", "bigint", "int", "smallint", "double", "float", "boolean",
    "timestamp", "timestamp_ntz", "date",
)


class ForeignKey(NamedTuple):
    """A served table's FOREIGN KEY: `column` holds a key of `parent` (its column `parent_key`)."""

    column: str
    parent: str
    parent_key: str


class Statement(NamedTuple):
    """One SQL statement with `%s` placeholders and their values: `session.execute(*statement)`."""

    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True)
class LedgerEntry:
    """One row of the export ledger (see LEDGER_TABLE); `exported_at` is timezone-aware UTC."""

    table_name: str
    delta_table_id: str
    delta_version: int
    from_version: int | None
    mode: str
    rows_upserted: int
    rows_deleted: int
    exported_at: datetime


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it matches the allowlist, else raise IdentifierError naming the fix."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise IdentifierError(
            f"{what} {name!r} cannot be used in SQL: identifiers must match "
            f"{IDENTIFIER.pattern} (lower-case letters, digits and underscores, starting with a "
            "letter, at most 63 characters). Rename it in the scenario."
        )
    return name


def staging_table(table: str) -> str:
    """The staging table of a gold table, at most 63 characters and unique per name."""
    check_identifier(table, "table name")
    name = STAGING_PREFIX + table
    if len(name) <= _MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:8]
    return f"{STAGING_PREFIX}{table[: _MAX_IDENTIFIER - len(STAGING_PREFIX) - 9]}_{digest}"


def export_lock_name(database: str) -> str:
    """The name of the per-database export lock."""
    return f"medallion_export.{database}"[:_MAX_LOCK_NAME]


class Dialect(ABC):
    """SQL differences between PostgreSQL and MySQL/MariaDB; the shared statements live here."""

    kind: ClassVar[str]
    quote_char: ClassVar[str]
    op_column_type: ClassVar[str]  # the staging `_op` column
    staging_kind: ClassVar[str] = "TABLE"

    def quote(self, name: str, what: str = "identifier") -> str:
        """Validate against the allowlist (or medallion's own `_medallion_*` names) and quote."""
        if not (isinstance(name, str) and _INTERNAL.match(name)):
            check_identifier(name, what)
        return f"{self.quote_char}{name}{self.quote_char}"

    # --- tables ------------------------------------------------------------------------------

    @abstractmethod
    def column_type(self, logical: str, key: bool = False) -> str:
        """The SQL type of a logical type (see LOGICAL_TYPES and `decimal(p,s)`); `key`: in the primary key."""

    def table_options(self) -> str:
        return ""

    def create_table(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        primary_key: Sequence[str] | None,
        extra: Sequence[tuple[str, str]] = (),
        kind: str = "TABLE",
        foreign_keys: Sequence[ForeignKey] = (),
    ) -> str:
        """`CREATE TABLE IF NOT EXISTS`; key columns NOT NULL when there is a primary key.

        Args:
            table: table name.
            columns: (name, logical type) pairs, see LOGICAL_TYPES and `decimal(p,s)`.
            primary_key: key columns, or None for a keyless (staging) table.
            extra: additional (name, SQL type) columns, e.g. the staging `_op` column.
            kind: what to create, `TABLE` or (PostgreSQL) `UNLOGGED TABLE`.
            foreign_keys: FOREIGN KEY constraints (a served silver entity's references).
        """
        keys = set(primary_key or ())
        names = {name for name, _ in columns}
        missing = (keys | {fk.column for fk in foreign_keys}) - names
        if missing:
            raise IdentifierError(f"key columns {sorted(missing)} are not columns of {table!r}")
        # A foreign key column is typed like the key it points at (MySQL cannot index TEXT).
        indexed = keys | {fk.column for fk in foreign_keys}
        lines = []
        for name, logical in columns:
            not_null = " NOT NULL" if name in keys else ""
            lines.append(f"{self.quote(name, 'column name')} {self.column_type(logical, key=name in indexed)}{not_null}")
        lines += [f"{self.quote(name)} {sql_type}" for name, sql_type in extra]
        if primary_key:
            lines.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in primary_key)})")
        lines += [
            f"FOREIGN KEY ({self.quote(fk.column)}) REFERENCES {self.quote(fk.parent, 'table name')} ({self.quote(fk.parent_key)})"
            for fk in foreign_keys
        ]
        body = ",\n  ".join(lines)
        return f"CREATE {kind} IF NOT EXISTS {self.quote(table, 'table name')} (\n  {body}\n){self.table_options()}"

    def create_staging(self, staging: str, columns: Sequence[tuple[str, str]]) -> str:
        """A keyless staging table: the gold columns and `_op` (duplicate rows are harmless)."""
        return self.create_table(
            staging, columns, primary_key=None, extra=[(OP_COLUMN, self.op_column_type)], kind=self.staging_kind
        )

    def insert_row(self, table: str, columns: Sequence[str]) -> str:
        """A one-row INSERT with `%s` placeholders (PyMySQL's `executemany` makes it multi-row)."""
        cols = ", ".join(self.quote(c) for c in columns)
        return f"INSERT INTO {self.quote(table)} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"

    def drop_table(self, table: str) -> str:
        return f"DROP TABLE IF EXISTS {self.quote(table, 'table name')}"

    def clear_table(self, table: str) -> str:
        """Delete every row (DML, so it stays inside a transaction on both kinds)."""
        return f"DELETE FROM {self.quote(table)}"

    def count_rows(self, table: str) -> str:
        return f"SELECT COUNT(*) FROM {self.quote(table)}"

    @abstractmethod
    def columns_of(self, table: str) -> Statement:
        """A table's column names in the connected database, in their order."""

    # --- the commit --------------------------------------------------------------------------

    def null_keys(self, staging: str, keys: Sequence[str]) -> str:
        """Count of staged upserts with a NULL in any key column (they cannot be exported).

        A staged delete with a NULL key is fine: no such row can exist in the target.
        """
        condition = " OR ".join(f"{self.quote(k)} IS NULL" for k in keys)
        return f"SELECT COUNT(*) FROM {self.quote(staging)} WHERE {self.quote(OP_COLUMN)} = 'U' AND ({condition})"

    def staged_counts(self, staging: str, keys: Sequence[str]) -> str:
        """Distinct keys staged per operation; duplicates from retried Spark tasks count once."""
        cols = ", ".join(self.quote(k) for k in keys)
        op = self.quote(OP_COLUMN)
        return (
            f"SELECT {op}, COUNT(*) FROM (SELECT DISTINCT {cols}, {op} FROM {self.quote(staging)}) d "
            f"GROUP BY {op}"
        )

    def _key_match(self, left: str, right: str, keys: Sequence[str]) -> str:
        return " AND ".join(f"{left}.{self.quote(k)} = {right}.{self.quote(k)}" for k in keys)

    def parents_present(self, alias: str, parents: Sequence[ForeignKey]) -> str:
        """A condition on staged rows (`alias`): every foreign key is NULL or finds its parent row
        in the target ("TRUE" without foreign keys)."""
        conditions = [
            f"({alias}.{self.quote(fk.column)} IS NULL OR EXISTS (SELECT 1 FROM {self.quote(fk.parent)} p "
            f"WHERE p.{self.quote(fk.parent_key)} = {alias}.{self.quote(fk.column)}))"
            for fk in parents
        ]
        return " AND ".join(conditions) or "1 = 1"

    def orphan_keys(self, staging: str, keys: Sequence[str], parents: Sequence[ForeignKey]) -> str:
        """Distinct staged upsert keys whose row names a parent the target does not hold."""
        cols = ", ".join(f"s.{self.quote(k)}" for k in keys)
        return (
            f"SELECT COUNT(*) FROM (SELECT DISTINCT {cols} FROM {self.quote(staging)} s "
            f"WHERE s.{self.quote(OP_COLUMN)} = 'U' AND NOT ({self.parents_present('s', parents)})) d"
        )

    @abstractmethod
    def text_cast(self, expression: str) -> str:
        """`expression` as text (views that list keys of any type)."""

    def create_view(self, name: str, select: str) -> str:
        """Create or replace a view; `select` is built by medallion.databases.views from quoted names."""
        return f"CREATE OR REPLACE VIEW {self.quote(name, 'view name')} AS\n{select}"

    @abstractmethod
    def delete_staged(self, table: str, staging: str, keys: Sequence[str]) -> str:
        """Delete target rows whose key is staged with op 'D'."""

    @abstractmethod
    def delete_missing(self, table: str, staging: str, keys: Sequence[str]) -> str:
        """Delete target rows whose key is not staged at all (full-snapshot sync)."""

    @abstractmethod
    def upsert(
        self, table: str, staging: str, columns: Sequence[str], keys: Sequence[str], parents: Sequence[ForeignKey] = ()
    ) -> str:
        """Insert-or-update every staged 'U' row into the target by key, tolerating duplicates;
        with `parents`, only rows whose foreign keys find their parent rows (see `parents_present`)."""

    @abstractmethod
    def discard_staging(self, staging: str) -> str:
        """The commit's last statement: no staged rows may outlive it."""

    def after_commit(self, staging: str) -> str | None:
        """What is left to do once the commit is through (None: nothing)."""
        return None

    # --- the ledger --------------------------------------------------------------------------

    @abstractmethod
    def ledger_ddl(self) -> str:
        """Create the ledger table unless it exists."""

    def ledger_time(self, instant: datetime) -> datetime:
        """`exported_at` as the ledger column stores it."""
        return instant

    def insert_ledger(self, entry: LedgerEntry) -> Statement:
        """Insert one ledger row."""
        sql = (
            f"INSERT INTO {self.quote(LEDGER_TABLE)} (table_name, delta_table_id, delta_version, "
            "from_version, mode, rows_upserted, rows_deleted, exported_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        )
        return Statement(sql, (
            entry.table_name, entry.delta_table_id, entry.delta_version, entry.from_version, entry.mode,
            entry.rows_upserted, entry.rows_deleted, self.ledger_time(entry.exported_at),
        ))

    def last_export(self, table: str) -> Statement:
        """The latest ledger row of a table: its Delta table id and version."""
        sql = (
            f"SELECT delta_table_id, delta_version FROM {self.quote(LEDGER_TABLE)} "
            "WHERE table_name = %s ORDER BY export_id DESC LIMIT 1"
        )
        return Statement(sql, (table,))

    # --- sessions ----------------------------------------------------------------------------

    @abstractmethod
    def try_lock(self, name: str) -> Statement:
        """Take a session-level named lock without waiting; the one value is true if taken."""

    @abstractmethod
    def unlock(self, name: str) -> Statement:
        """Release the lock `try_lock` took."""

    @abstractmethod
    def backend_id(self) -> str:
        """The server-side id of the session."""


class PostgresDialect(Dialect):
    """PostgreSQL: double-quoted names, timestamptz, ON CONFLICT upserts, transactional DDL."""

    kind = "postgres"
    quote_char = '"'
    op_column_type = "char(1) NOT NULL"
    # No WAL for rows that live until the commit: a server crash empties an unlogged table,
    # and every run recreates its staging table anyway.
    staging_kind = "UNLOGGED TABLE"
    _TYPES: ClassVar[dict[str, str]] = {
        "string": "text", "bigint": "bigint", "int": "integer", "smallint": "smallint",
        "double": "double precision", "float": "real", "boolean": "boolean",
        "timestamp": "timestamptz", "timestamp_ntz": "timestamp", "date": "date",
    }

    def column_type(self, logical: str, key: bool = False) -> str:
        match = _DECIMAL.match(logical)
        if match:
            return f"numeric({match[1]},{match[2]})"
        return self._TYPES[logical]

    def columns_of(self, table: str) -> Statement:
        sql = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"
        )
        return Statement(sql, (table,))

    def delete_staged(self, table: str, staging: str, keys: Sequence[str]) -> str:
        return (
            f"DELETE FROM {self.quote(table)} t USING {self.quote(staging)} s "
            f"WHERE s.{self.quote(OP_COLUMN)} = 'D' AND {self._key_match('t', 's', keys)}"
        )

    def delete_missing(self, table: str, staging: str, keys: Sequence[str]) -> str:
        return (
            f"DELETE FROM {self.quote(table)} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.quote(staging)} s WHERE {self._key_match('s', 't', keys)})"
        )

    def upsert(
        self, table: str, staging: str, columns: Sequence[str], keys: Sequence[str], parents: Sequence[ForeignKey] = ()
    ) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        key_cols = ", ".join(self.quote(k) for k in keys)
        only_parented = f" AND {self.parents_present('s', parents)}" if parents else ""
        updates = ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in columns if c not in keys)
        # DISTINCT ON: ON CONFLICT DO UPDATE may not touch one row twice, and a retried Spark
        # task can stage the same row again.
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        return (
            f"INSERT INTO {self.quote(table)} ({cols}) "
            f"SELECT DISTINCT ON ({key_cols}) {cols} FROM {self.quote(staging)} s "
            f"WHERE {self.quote(OP_COLUMN)} = 'U'{only_parented} ORDER BY {key_cols} "
            f"ON CONFLICT ({key_cols}) {action}"
        )

    def text_cast(self, expression: str) -> str:
        return f"CAST({expression} AS text)"

    def copy_from_stdin(self, table: str, columns: Sequence[str], data_format: str = "csv") -> str:
        """`COPY ... FROM STDIN`; in `csv` an unquoted empty field is NULL and a quoted one ''
        (`text` is the format psycopg's `write_row` produces)."""
        if data_format not in ("csv", "text"):
            raise DatabaseError(f"unknown COPY format {data_format!r}; expected csv or text")
        cols = ", ".join(self.quote(c) for c in columns)
        return f"COPY {self.quote(table)} ({cols}) FROM STDIN (FORMAT {data_format})"

    def discard_staging(self, staging: str) -> str:
        return self.drop_table(staging)  # DDL is transactional here: the table goes with the commit

    def ledger_ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.quote(LEDGER_TABLE)} (\n"
            "  export_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            "  table_name text NOT NULL,\n"
            "  delta_table_id text NOT NULL,\n"
            "  delta_version bigint NOT NULL,\n"
            "  from_version bigint,\n"
            "  mode text NOT NULL,\n"
            "  rows_upserted bigint NOT NULL,\n"
            "  rows_deleted bigint NOT NULL,\n"
            "  exported_at timestamptz NOT NULL\n)"
        )

    def try_lock(self, name: str) -> Statement:
        # Session-level advisory lock keyed by a hash of the name; released on disconnect too.
        return Statement("SELECT pg_try_advisory_lock(hashtext(%s))", (name,))

    def unlock(self, name: str) -> Statement:
        return Statement("SELECT pg_advisory_unlock(hashtext(%s))", (name,))

    def backend_id(self) -> str:
        return "SELECT pg_backend_pid()"


class MySQLDialect(Dialect):
    """MySQL and MariaDB: backticks, DATETIME(6) in UTC, ON DUPLICATE KEY UPDATE, binary collation."""

    kind = "mysql"
    quote_char = "`"
    op_column_type = "CHAR(1) NOT NULL"
    _TYPES: ClassVar[dict[str, str]] = {
        "string": "TEXT", "bigint": "BIGINT", "int": "INT", "smallint": "SMALLINT",
        "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
        "timestamp": "DATETIME(6)", "timestamp_ntz": "DATETIME(6)", "date": "DATE",
    }

    def column_type(self, logical: str, key: bool = False) -> str:
        match = _DECIMAL.match(logical)
        if match:
            return f"DECIMAL({match[1]},{match[2]})"
        if logical == "string" and key:
            return "VARCHAR(255)"  # TEXT cannot be a primary key without a prefix length
        return self._TYPES[logical]

    def table_options(self) -> str:
        # Binary collation: the default case-insensitive one would merge keys 'A' and 'a'.
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    def columns_of(self, table: str) -> Statement:
        sql = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position"
        )
        return Statement(sql, (table,))

    def delete_staged(self, table: str, staging: str, keys: Sequence[str]) -> str:
        return (
            f"DELETE t FROM {self.quote(table)} t JOIN {self.quote(staging)} s "
            f"ON {self._key_match('t', 's', keys)} WHERE s.{self.quote(OP_COLUMN)} = 'D'"
        )

    def delete_missing(self, table: str, staging: str, keys: Sequence[str]) -> str:
        first = self.quote(keys[0])
        return (
            f"DELETE t FROM {self.quote(table)} t LEFT JOIN {self.quote(staging)} s "
            f"ON {self._key_match('t', 's', keys)} WHERE s.{first} IS NULL"
        )

    def upsert(
        self, table: str, staging: str, columns: Sequence[str], keys: Sequence[str], parents: Sequence[ForeignKey] = ()
    ) -> str:
        only_parented = f" AND {self.parents_present('s', parents)}" if parents else ""
        cols = ", ".join(self.quote(c) for c in columns)
        selected = ", ".join(f"s.{self.quote(c)}" for c in columns)
        non_keys = [c for c in columns if c not in keys] or list(keys)
        # Referencing the SELECT's columns works on MySQL 8 and MariaDB alike (VALUES() is
        # deprecated on MySQL, the `AS new` alias is unknown to MariaDB). Duplicate staged rows
        # are identical, so the second simply rewrites the same values.
        updates = ", ".join(f"{self.quote(c)} = s.{self.quote(c)}" for c in non_keys)
        return (
            f"INSERT INTO {self.quote(table)} ({cols}) "
            f"SELECT {selected} FROM {self.quote(staging)} s WHERE s.{self.quote(OP_COLUMN)} = 'U'{only_parented} "
            f"ON DUPLICATE KEY UPDATE {updates}"
        )

    def text_cast(self, expression: str) -> str:
        return f"CAST({expression} AS CHAR)"

    def discard_staging(self, staging: str) -> str:
        return self.clear_table(staging)  # DDL would commit implicitly: the table goes after the commit

    def after_commit(self, staging: str) -> str | None:
        return self.drop_table(staging)

    def ledger_ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.quote(LEDGER_TABLE)} (\n"
            "  export_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,\n"
            "  table_name VARCHAR(64) NOT NULL,\n"
            "  delta_table_id VARCHAR(64) NOT NULL,\n"
            "  delta_version BIGINT NOT NULL,\n"
            "  from_version BIGINT NULL,\n"
            "  mode VARCHAR(16) NOT NULL,\n"
            "  rows_upserted BIGINT NOT NULL,\n"
            "  rows_deleted BIGINT NOT NULL,\n"
            "  exported_at DATETIME(6) NOT NULL,\n"
            "  KEY by_table (table_name, export_id)\n)"
            + self.table_options()
        )

    def ledger_time(self, instant: datetime) -> datetime:
        return instant.replace(tzinfo=None)  # DATETIME: the UTC wall clock (sessions run in UTC)

    def try_lock(self, name: str) -> Statement:
        return Statement("SELECT GET_LOCK(%s, 0) = 1", (name,))

    def unlock(self, name: str) -> Statement:
        return Statement("SELECT RELEASE_LOCK(%s)", (name,))

    def backend_id(self) -> str:
        return "SELECT CONNECTION_ID()"


_DIALECTS: dict[str, Dialect] = {dialect.kind: dialect for dialect in (PostgresDialect(), MySQLDialect())}


def dialect_for(kind: str) -> Dialect:
    """The dialect of `postgres` or `mysql` (MariaDB included)."""
    try:
        return _DIALECTS[kind]
    except KeyError:
        raise DatabaseError(f"unknown database kind {kind!r}; expected postgres or mysql") from None
