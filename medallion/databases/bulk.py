"""Bulk-load Arrow record batches into a table of an export target (the export's staging write).

- PostgreSQL: `COPY ... FROM STDIN (FORMAT csv)`, each batch rendered to CSV by Arrow's C++
  writer. It quotes every string and leaves NULL unquoted and empty, so NULL and '' stay apart;
  doubles are written in their shortest round-trip form (`-0`, `5e-324`, `inf`, `nan` included),
  zoned timestamps as UTC with a `Z`.
- MySQL/MariaDB: PyMySQL `executemany` of one single-row INSERT, which PyMySQL rewrites into
  multi-row INSERTs below its statement size limit (`max_stmt_length`, far under the server's
  `max_allowed_packet`). Zoned timestamps are UTC instants, which PyMySQL writes as their wall
  clock: the session runs in UTC (see `medallion.databases.sql.connect`).

Memory stays bounded by one batch: nothing here holds more than one batch's rows (as CSV bytes
or Python tuples) at a time. The statements come from `medallion.databases.dialects`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.csv as arrow_csv

from medallion.databases.dialects import PostgresDialect
from medallion.databases.sql import SqlSession

_CSV_OPTIONS = arrow_csv.WriteOptions(include_header=False, quoting_style="needed")


def csv_chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """Each non-empty batch as CSV without a header, in PostgreSQL's `FORMAT csv` conventions."""
    for batch in batches:
        if batch.num_rows:
            sink = pa.BufferOutputStream()
            arrow_csv.write_csv(batch, sink, _CSV_OPTIONS)
            yield sink.getvalue().to_pybytes()


def python_rows(batch: pa.RecordBatch) -> list[tuple[object, ...]]:
    """One batch as Python tuples, column by column (Arrow converts each column in one call)."""
    return list(zip(*(column.to_pylist() for column in batch.columns), strict=True))


def load_rows_one_by_one(session: SqlSession, table: str, columns: Sequence[str], batches: Iterable[pa.RecordBatch]) -> int:
    """Append the rows one INSERT at a time on the autocommit session: one statement and one
    commit per row, as a row-at-a-time producer writes (`export --mode row`). Returns the rows sent."""
    insert = session.dialect.insert_row(table, columns)
    sent = 0
    for batch in batches:
        for row in python_rows(batch):
            session.execute(insert, row)
            sent += 1
    return sent


def load_batches(session: SqlSession, table: str, columns: Sequence[str], batches: Iterable[pa.RecordBatch]) -> int:
    """Append the batches' rows (columns in `columns` order) to an existing table.

    Returns:
        The number of rows sent.

    Raises:
        DatabaseError: the server refused a statement or went away (password masked); rows
            already sent stay, so callers load into a table they discard on failure.
    """
    dialect = session.dialect
    sent = 0

    def counted(stream: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal sent
        for batch in stream:
            sent += batch.num_rows
            yield batch

    if isinstance(dialect, PostgresDialect):
        session.copy_in(dialect.copy_from_stdin(table, columns), csv_chunks(counted(batches)))
    else:
        insert = dialect.insert_row(table, columns)
        for batch in counted(batches):
            if batch.num_rows:
                session.insert_many(insert, python_rows(batch))
    return sent
