"""Run SQL on an export target without a command-line client: psycopg 3 or PyMySQL.

Both drivers use `%s` placeholders; the statements themselves, and every difference between
the kinds, come from `medallion.databases.dialects` (`session.dialect`). Driver errors become
`DatabaseError` with the password masked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from medallion.contracts.errors import DatabaseError
from medallion.databases.connection import Connection
from medallion.databases.dialects import Dialect, dialect_for

Params = Sequence[Any] | None


def driver_message(connection: Connection, exc: BaseException) -> str:
    """A driver error as one line with the password masked (psycopg's span several lines)."""
    text = " ".join(connection.scrub(str(exc)).split())
    return text or type(exc).__name__


class SqlSession:
    """One autocommit connection to a target; `transaction()` groups statements atomically."""

    def __init__(self, connection: Connection, raw: Any) -> None:
        self.connection = connection
        self._raw = raw
        self._in_transaction = False

    @property
    def kind(self) -> str:
        return self.connection.kind

    @property
    def dialect(self) -> Dialect:
        """The SQL this session's server speaks."""
        return dialect_for(self.kind)

    def _fail(self, action: str, exc: BaseException) -> DatabaseError:
        return DatabaseError(f"{action} on {self.connection} failed: {driver_message(self.connection, exc)}")

    def execute(self, sql: str, params: Params = None) -> int:
        """Run one statement; returns the driver's affected-row count."""
        try:
            with self._raw.cursor() as cursor:
                cursor.execute(sql, params)
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._fail("SQL", exc) from None

    def query(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """Run one statement and return all its rows as tuples."""
        try:
            with self._raw.cursor() as cursor:
                cursor.execute(sql, params)
                return [tuple(row) for row in cursor.fetchall()]
        except Exception as exc:
            raise self._fail("SQL", exc) from None

    def copy_in(self, sql: str, chunks: Iterable[bytes]) -> None:
        """PostgreSQL `COPY ... FROM STDIN`: stream the chunks as the statement's data."""
        try:
            with self._raw.cursor() as cursor, cursor.copy(sql) as copy:
                for chunk in chunks:
                    copy.write(chunk)
        except DatabaseError:
            raise
        except Exception as exc:
            raise self._fail("COPY", exc) from None

    def copy_rows(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """PostgreSQL `COPY ... FROM STDIN (FORMAT text)` of Python tuples, one `write_row` each."""
        try:
            with self._raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:
            raise self._fail("COPY", exc) from None

    def insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The driver's `executemany` (PyMySQL turns a one-row INSERT into multi-row ones)."""
        try:
            with self._raw.cursor() as cursor:
                cursor.executemany(sql, rows)
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._fail("INSERT", exc) from None

    def scalar(self, sql: str, params: Params = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[SqlSession]:
        """BEGIN ... COMMIT, or ROLLBACK when the block raises (the exception propagates).

        MySQL commits implicitly before DDL, so only DML belongs inside on that kind.
        """
        if self._in_transaction:
            raise DatabaseError("nested transactions are not supported; finish the outer one first")
        self._in_transaction = True
        try:
            self._begin()
            try:
                yield self
            except BaseException:
                self._rollback()
                raise
            self._commit()
        finally:
            self._in_transaction = False

    def _begin(self) -> None:
        try:
            if self.kind == "postgres":
                self._raw.autocommit = False
            else:
                self._raw.begin()
        except Exception as exc:
            raise self._fail("BEGIN", exc) from None

    def _commit(self) -> None:
        try:
            self._raw.commit()
        except Exception as exc:
            self._rollback()
            raise self._fail("COMMIT", exc) from None
        finally:
            self._restore_autocommit()

    def _rollback(self) -> None:
        # The connection may be gone already; the original error is what matters.
        with contextlib.suppress(Exception):
            self._raw.rollback()
        self._restore_autocommit()

    def _restore_autocommit(self) -> None:
        if self.kind == "postgres":
            # A broken connection cannot change mode; it is closed next anyway.
            with contextlib.suppress(Exception):
                self._raw.autocommit = True

    def backend_id(self) -> int:
        """The server-side id of this session (`pg_backend_pid()` / `CONNECTION_ID()`)."""
        return int(self.scalar(self.dialect.backend_id()))

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server)."""
        with contextlib.suppress(Exception):  # closing a dead connection is not worth an error
            self._raw.close()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(connection: Connection, *, connect_timeout: int = 10) -> SqlSession:
    """Open an autocommit session; PostgreSQL via psycopg 3, MySQL/MariaDB via PyMySQL.

    Sessions run in UTC so timestamps mean the same on both kinds and in Spark.

    Raises:
        DatabaseError: the server is unreachable or refuses the login (password masked).
    """
    try:
        if connection.kind == "postgres":
            import psycopg

            raw: Any = psycopg.connect(
                host=connection.unix_socket or connection.host,
                port=connection.port,
                dbname=connection.database,
                user=connection.user,
                password=connection.reveal_password() or None,
                connect_timeout=connect_timeout,
                autocommit=True,
                options="-c TimeZone=UTC",
                application_name="medallion",
            )
        else:
            import pymysql

            kwargs: dict[str, Any] = {
                "user": connection.user,
                "password": connection.reveal_password(),
                "database": connection.database or None,
                "connect_timeout": connect_timeout,
                "autocommit": True,
                "charset": "utf8mb4",
                "init_command": "SET time_zone = '+00:00'",
            }
            if connection.unix_socket:
                kwargs["unix_socket"] = connection.unix_socket
            else:
                kwargs.update(host=connection.host, port=connection.port)
            raw = pymysql.connect(**kwargs)
    except Exception as exc:
        message = driver_message(connection, exc)
        raise DatabaseError(
            f"could not connect to {connection}: {message}. Check that the server runs and that "
            "the user and the password variable are right"
        ) from None
    return SqlSession(connection, raw)


def run_sql(connection: Connection, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
    """Open a session, run one statement (autocommit), return its rows (empty if none), close.

    Args:
        connection: where to run it.
        sql: one statement with `%s` placeholders.
        params: values for the placeholders.
    """
    with connect(connection) as session:
        try:
            with session._raw.cursor() as cursor:
                cursor.execute(sql, params)
                if cursor.description is None:
                    return []
                return [tuple(row) for row in cursor.fetchall()]
        except Exception as exc:
            raise session._fail("SQL", exc) from None


def count_rows(connection: Connection, table: str) -> int:
    """Rows in a table of the target (the name is checked against the identifier allowlist)."""
    return int(run_sql(connection, dialect_for(connection.kind).count_rows(table))[0][0])
