"""What the staging load sends, checked without a server: CSV for PostgreSQL's COPY, tuples for PyMySQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from medallion.databases.bulk import csv_chunks, python_rows

BATCH = pa.RecordBatch.from_pydict(
    {
        "name": pa.array(["plain", "", None, 'quote " comma , line\nbreak', "ünïcødé 😀"]),
        "at": pa.array(
            [datetime(2026, 1, 5, 8, 0, 0, 123456, tzinfo=UTC), None, datetime(1970, 1, 1, tzinfo=UTC),
             datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)],
            pa.timestamp("us", tz="UTC"),
        ),
        "speed": pa.array([1.7976931348623157e308, 5e-324, -0.0, None, 0.1 + 0.2]),
        "events": pa.array([2**63 - 1, -(2**63), None, 0, 1], pa.int64()),
    }
)


def test_csv_keeps_null_apart_from_the_empty_string_and_doubles_exact() -> None:
    text = b"".join(csv_chunks([BATCH, BATCH.slice(0, 0)])).decode()
    assert text.splitlines()[:3] == [
        '"plain",2026-01-05 08:00:00.123456Z,1.7976931348623157e+308,9223372036854775807',
        '"",,5e-324,-9223372036854775808',  # '' quoted, NULL bare: COPY's CSV reads them apart
        ',1970-01-01 00:00:00.000000Z,-0,',
    ]
    assert '"quote "" comma , line\nbreak",2999-12-31 23:59:59.999999Z,,0' in text
    assert text.endswith('"ünïcødé 😀",2026-01-05 00:00:00.000000Z,0.30000000000000004,1\n')
    assert list(csv_chunks([BATCH.slice(0, 0)])) == []  # an empty batch sends nothing


def test_python_rows_are_the_batch_row_by_row() -> None:
    rows = python_rows(BATCH)
    assert len(rows) == 5 and rows[1][:2] == ("", None) and rows[2][0] is None
    assert rows[0][1] == datetime(2026, 1, 5, 8, 0, 0, 123456, tzinfo=UTC)
    assert [repr(r[2]) for r in rows] == ["1.7976931348623157e+308", "5e-324", "-0.0", "None", "0.30000000000000004"]
