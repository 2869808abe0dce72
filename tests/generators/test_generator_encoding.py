"""The compiled line assembly (generators/kernels.py) against an independent rendering.

Every line the layout builds must equal `json.dumps` of the same record, whatever mix of
regular rows, overridden values, omitted and renamed fields, tails and cuts a block holds,
and at every block boundary.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from numba.core.errors import TypingError

from generators import encode, kernels


def _layout(n: int, seed: int) -> tuple[encode.LineLayout, list[dict[str, object]]]:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    speeds = np.round(rng.normal(50, 30, n), 1)  # negative ones too: sign column with padding
    counts = rng.integers(-5, 100_000, n)
    names = ["a", "bb", "ccc", "dddd ü"]
    codes = rng.integers(0, len(names), n)
    layout = encode.LineLayout(n)
    layout.add_field("id", encode.encode_sequence(ids, "e-", 6))
    layout.add_field("speed", encode.encode_fixed(speeds, 1))
    layout.add_field("count", encode.encode_int(counts))
    layout.add_field("name", encode.encode_codes(codes, encode.string_table(names)))
    # Last, a value without padding: copied by whole blocks, it runs past its piece.
    instants = 1_767_225_600_000 + rng.integers(0, 86_400_000, n)
    layout.add_field("at", encode.encode_timestamp(instants))
    records: list[dict[str, object]] = [
        {"id": f"e-{i:06d}", "speed": float(s), "count": int(c), "name": names[k], "at": encode.format_timestamp(t)}
        for i, s, c, k, t in zip(ids.tolist(), speeds.tolist(), counts.tolist(), codes.tolist(), instants.tolist(), strict=True)
    ]
    # Irregular rows of every kind, some of them adjacent and at the ends.
    nulls = np.array([0, 1, 7, n - 1])
    layout.override_values("speed", nulls, np.tile(np.frombuffer(b"null", dtype=np.uint8), (nulls.size, 1)))
    for row in nulls.tolist():
        records[row]["speed"] = None
    wide = np.array([3, 8])
    layout.override_values("count", wide, encode.bytes_table([b'"a much wider text than the column"'] * wide.size))
    for row in wide.tolist():
        records[row]["count"] = "a much wider text than the column"
    omitted = np.array([2, 9, n - 2])
    layout.omit_rows("name", omitted)
    for row in omitted.tolist():
        del records[row]["name"]
    renamed = np.array([4, 5])
    layout.override_keys("count", renamed, "total")
    for row in renamed.tolist():
        records[row] = {("total" if k == "count" else k): v for k, v in records[row].items()}
    layout.add_tail(6, b',"extra":true')
    records[6]["extra"] = True
    # A field most rows leave out (a drift starting to add it), irregular rows among them.
    left_out = rng.random(n) < 0.7
    layout.omit_mask("at", left_out)
    for row in np.flatnonzero(left_out).tolist():
        del records[row]["at"]
    return layout, records


def _expected(records: list[dict[str, object]]) -> list[bytes]:
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records]


def test_assembled_lines_equal_json_dumps_in_any_block() -> None:
    layout, records = _layout(500, seed=3)
    expected = _expected(records)
    for start, stop in ((0, 500), (0, 1), (1, 10), (5, 7), (123, 321), (499, 500), (250, 250)):
        text, ends = layout.build_text(start, stop)
        assert ends.size == stop - start + 1 and ends[0] == 0 and ends[-1] == text.size
        lines = [text[ends[i] : ends[i + 1]].tobytes() for i in range(stop - start)]
        assert lines == expected[start:stop]
    assert layout.line(6) == expected[6]


def test_a_cut_line_keeps_its_key_and_newline() -> None:
    layout, records = _layout(50, seed=5)
    layout.truncate(10, 0.5, after_field="id")
    line = layout.line(10)
    whole = _expected(records)[10]
    assert line.endswith(b"\n") and line != whole
    assert whole.startswith(line[:-1]) and line.startswith(b'{"id":"e-000011"')
    assert layout.line(11) == _expected(records)[11]


def test_compress_rows_drops_padding_anywhere() -> None:
    rng = np.random.default_rng(11)
    matrix = rng.integers(1, 255, (300, 37), dtype=np.uint8)
    matrix[rng.random(matrix.shape) < 0.3] = 0  # padding at random places, whole rows too
    matrix[17] = 0
    text, ends = kernels.compress_rows(matrix)
    assert text.tobytes() == matrix[matrix != 0].tobytes()
    assert np.array_equal(np.diff(ends), np.count_nonzero(matrix, axis=1))


def _pieces(matrix: np.ndarray, prefix: bytes, compact: bool, rows: np.ndarray, columns: int, column: int) -> tuple[np.ndarray, np.ndarray]:
    """Piece `column` of a table of `columns` pieces, from `kernels.fill_pieces`."""
    width = kernels.piece_width(len(prefix), matrix.shape[1])
    pieces = np.zeros((rows.size, 5 + width + kernels.BLOCK), dtype=np.uint8)  # at offset 5
    table = np.zeros((rows.size, columns), dtype=np.int32)
    kernels.fill_pieces(pieces, 5, matrix, kernels.prefix_blocks(prefix), len(prefix), compact, rows, table, column)
    assert not pieces[:, :5].any()  # nothing written before the offset
    return pieces[:, 5:], table


def test_pieces_hold_the_prefix_then_each_value_without_its_padding() -> None:
    rng = np.random.default_rng(12)
    matrix = rng.integers(1, 255, (300, 23), dtype=np.uint8)
    matrix[rng.random(matrix.shape) < 0.3] = 0  # padding at random places, whole rows too
    matrix[5] = 0
    prefix = b',"key":'
    rows = rng.permutation(300)[:200]  # lines show rows in any order
    pieces, table = _pieces(matrix, prefix, True, rows, 2, 1)
    lengths = table[:, 1]
    assert not table[:, 0].any()  # only its own column of the table is written
    assert np.array_equal(lengths, len(prefix) + np.count_nonzero(matrix[rows], axis=1))
    for row, piece, length in zip(matrix[rows], pieces, lengths, strict=True):
        assert piece[:length].tobytes() == prefix + row[row != 0].tobytes()
    dense = rng.integers(1, 255, (50, 9), dtype=np.uint8)
    long_key = b',"' + b"k" * 40 + b'":'  # longer than a block
    for key in (prefix, long_key):
        pieces, table = _pieces(dense, key, False, np.arange(50), 1, 0)
        assert (table[:, 0] == len(key) + 9).all()
        assert np.array_equal(pieces[:, len(key) : len(key) + 9], dense)
        assert (pieces[:, : len(key)] == np.frombuffer(key, dtype=np.uint8)).all()


def _texts(matrix: np.ndarray) -> list[str]:
    return [row[row != 0].tobytes().decode() for row in matrix]


def test_numbers_are_written_like_python_writes_them() -> None:
    rng = np.random.default_rng(2)
    floats = np.concatenate([rng.normal(0, 1000, 2000), [0.0, -0.04, 0.05, -0.5, 12.0, 99.95, 1e9 + 0.5, -123456.789]])
    for decimals in (1, 2, 5):
        expected = [repr(round(float(x), decimals)) for x in np.rint(floats * 10**decimals) / 10**decimals]
        expected = [e.replace("-0.0", "0.0") if e.strip("-0.") == "" else e for e in expected]
        assert _texts(encode.encode_fixed(floats, decimals)) == expected
    ints = np.concatenate([rng.integers(-(10**12), 10**12, 2000), [0, -1, 9, 10, 9999, 10_000, -10_000, 10**15]])
    assert _texts(encode.encode_int(ints)) == [str(int(i)) for i in ints]
    ids = np.array([0, 7, 42, 999, 1000, 123_456])  # the last two outgrow the width
    assert _texts(encode.encode_sequence(ids, "d-", 3)) == [f'"{encode.format_sequence(int(i), "d-", 3)}"' for i in ids]
    assert _texts(encode.encode_sequence(ids[:4], "d-", 3)) == ['"d-000"', '"d-007"', '"d-042"', '"d-999"']


def test_timestamps_are_iso_8601_with_milliseconds() -> None:
    rng = np.random.default_rng(4)
    instants = np.concatenate([rng.integers(0, 4_102_444_800_000, 3000), [0, 86_399_999, 1_767_225_599_999]])
    expected = [f'"{encode.format_timestamp(int(ms))}"' for ms in instants]
    assert _texts(encode.encode_timestamp(instants)) == expected


def test_scaled_integers_are_numpys_rint_clip_and_cast() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(50, 300, 20_000), [0.05, 0.15, 0.25, -0.35, 2.5, -2.5, np.nan, np.inf, -np.inf]])
    for scale, low, high in ((10.0, 0.0, 1600.0), (1e5, -np.inf, np.inf), (100.0, -5.0, np.inf)):
        with np.errstate(invalid="ignore"):
            expected = np.clip(np.rint(values * scale), low, high).astype(np.int64)
        np.testing.assert_array_equal(kernels.scaled_integers(values, scale, low, high), expected)


def test_instants_from_spacings_are_numpys_cumulative_sums() -> None:
    rng = np.random.default_rng(8)
    for count, start, end in ((1, 0, 10), (7, 1_767_225_600_000, 1_767_226_500_000), (50_000, 1_767_225_600_000, 1_767_226_500_000)):
        spacings = rng.standard_exponential(count + 1)
        running = np.cumsum(spacings)
        expected = start + (running[:-1] / running[-1] * (end - start)).astype(np.int64)
        got = kernels.instants_from_spacings(spacings, start, end)
        np.testing.assert_array_equal(got, expected)
        assert (np.diff(got) >= 0).all() and got[0] >= start and got[-1] < end


def test_raw_memory_kernels_refuse_arrays_that_are_not_contiguous_bytes() -> None:
    """The block and word copies compute byte offsets from a buffer's start: a strided view
    must fail to compile, not read the wrong bytes."""
    with pytest.raises(TypingError):
        kernels.compress_rows(np.ones((4, 16), dtype=np.uint8)[:, ::2])
    text, ends = kernels.compress_rows(np.ascontiguousarray(np.ones((4, 16), dtype=np.uint8)[:, ::2]))
    assert text.size == 32 and ends.tolist() == [0, 8, 16, 24, 32]
