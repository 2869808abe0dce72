"""Vectorised JSON encoding: values become zero-padded byte matrices, rows become lines.

Every encoder returns a `uint8` matrix of shape (n, width) holding the JSON text of one value
per row, left-aligned or right-aligned, padded with zero bytes. Zero never occurs in JSON text,
so a whole line is assembled by laying the key literals and value matrices side by side and
dropping the zero bytes (`LineLayout.build_text`). Whole columns are handled at once, by numpy
or by the compiled loops of generators.kernels, never by a Python loop per row: that is what
makes the generator run at millions of records per second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from generators import kernels

PAD = 0
_QUOTE = ord('"')
_MS_PER_DAY = 86_400_000


_HEX = np.array([list(f"{i:02x}".encode()) for i in range(256)], dtype=np.uint8)


def _trim_leading_zeros(digit_matrix: np.ndarray, keep: int = 1) -> np.ndarray:
    """Replace leading '0' characters with padding, keeping at least `keep` digits."""
    if digit_matrix.shape[1] <= keep:
        return digit_matrix
    head = digit_matrix[:, : digit_matrix.shape[1] - keep]
    leading = np.logical_and.accumulate(head == 48, axis=1)
    head[leading] = PAD
    return digit_matrix


def plain_digits(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative ints without leading zeros, right-aligned and padded."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    if values.size == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    return kernels.plain_digits_text(values, width_of(int(values.max())))


def width_of(max_value: int) -> int:
    """Number of decimal digits of a non-negative int."""
    return max(1, len(str(int(max_value))))


def encode_int(values: np.ndarray) -> np.ndarray:
    """JSON integers (optional minus sign, no leading zeros)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    negative = values < 0
    body = plain_digits(np.abs(values))
    if not negative.any():
        return body
    sign = np.where(negative, np.uint8(45), np.uint8(PAD)).astype(np.uint8)[:, None]
    return np.hstack([sign, body])


def encode_fixed(values: np.ndarray, decimals: int) -> np.ndarray:
    """JSON numbers rounded to `decimals` places, written like Python's repr of the rounded
    float: trailing zeros trimmed but at least one decimal ("52.3", "12.0", "-0.5")."""
    values = np.asarray(values, dtype=np.float64)
    return encode_scaled(np.rint(values * 10.0**decimals).astype(np.int64), decimals)


def encode_scaled(scaled: np.ndarray, decimals: int) -> np.ndarray:
    """Numbers given as integers in units of 10**-decimals (12345 with 2 -> "123.45")."""
    n = scaled.size
    if n == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    places = max(decimals, 1)
    if places != decimals:
        scaled = scaled * 10 ** (places - decimals)
    scaled = np.ascontiguousarray(scaled, dtype=np.int64)
    negative = scaled < 0
    any_negative = bool(negative.any())
    magnitude = np.abs(scaled) if any_negative else scaled
    head_width = width_of(int(magnitude.max()) // 10**places)
    return kernels.fixed_point_text(magnitude, negative, places, head_width, any_negative)


def _date_table(first_day: int, last_day: int) -> np.ndarray:
    days = np.arange(first_day, last_day + 1).astype("datetime64[D]")
    text = np.datetime_as_string(days, unit="D").astype("S10")
    return np.frombuffer(text.tobytes(), dtype=np.uint8).reshape(-1, 10)


def encode_timestamp(epoch_ms: np.ndarray) -> np.ndarray:
    """Quoted ISO-8601 UTC instants with milliseconds: "2026-01-05T06:03:12.345Z" (26 bytes)."""
    epoch_ms = np.ascontiguousarray(epoch_ms, dtype=np.int64)
    if epoch_ms.size == 0:
        return np.empty((0, 26), dtype=np.uint8)
    days = epoch_ms // _MS_PER_DAY
    first = int(days.min())
    # A batch spans minutes to days: each distinct date is formatted once, then looked up.
    return kernels.timestamp_text(epoch_ms, _date_table(first, int(days.max())), first)


def encode_date(epoch_days: np.ndarray) -> np.ndarray:
    """Quoted ISO-8601 dates: "2026-01-05" (12 bytes)."""
    epoch_days = np.asarray(epoch_days, dtype=np.int64)
    out = np.empty((epoch_days.size, 12), dtype=np.uint8)
    if epoch_days.size == 0:
        return out
    first = int(epoch_days.min())
    out[:, 0] = _QUOTE
    out[:, 1:11] = np.take(_date_table(first, int(epoch_days.max())), epoch_days - first, axis=0)
    out[:, 11] = _QUOTE
    return out


def json_scalar(value: object) -> bytes:
    """Compact JSON text of one Python value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def format_timestamp(epoch_ms: int) -> str:
    """One instant as the generator writes it, without quotes (for ledgers and defects)."""
    instant = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def string_table(values: Sequence[str]) -> np.ndarray:
    """JSON-encoded (quoted, escaped, UTF-8) strings as a padded (k, width) matrix."""
    encoded = [json.dumps(v, ensure_ascii=False).encode("utf-8") for v in values]
    return bytes_table(encoded)


def bytes_table(items: Sequence[bytes]) -> np.ndarray:
    """Byte strings as a zero-padded (k, width) matrix."""
    width = max((len(b) for b in items), default=1) or 1
    joined = b"".join(item.ljust(width, b"\0") for item in items)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(items), width).copy()


def encode_codes(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Rows of a pre-encoded table picked by integer codes."""
    return np.take(table, np.asarray(codes, dtype=np.intp), axis=0)


def encode_sequence(numbers: np.ndarray, prefix: str, width: int) -> np.ndarray:
    """Quoted ids `prefix` + the number zero-padded to `width` digits (more if it outgrows it)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    n = numbers.size
    full = max(width, width_of(int(numbers.max())) if n else width)
    head = np.frombuffer(b'"' + json.dumps(prefix, ensure_ascii=False).encode()[1:-1], dtype=np.uint8)
    out = kernels.quoted_sequence_text(np.ascontiguousarray(numbers), head, full)
    if full > width:
        _trim_leading_zeros(out[:, head.size : head.size + full], keep=width)
    return out


def format_sequence(number: int, prefix: str, width: int) -> str:
    """One id as `encode_sequence` writes it, without quotes."""
    return f"{prefix}{number:0{width}d}"


def uuid_bytes(raw: np.ndarray) -> np.ndarray:
    """Force the version-4 and RFC 4122 variant bits on (n, 16) random bytes."""
    raw = np.asarray(raw, dtype=np.uint8).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def encode_uuid(raw: np.ndarray) -> np.ndarray:
    """Quoted canonical UUID text (38 bytes) from (n, 16) bytes."""
    n = raw.shape[0]
    hexed = np.take(_HEX, raw, axis=0).reshape(n, 32)
    out = np.empty((n, 38), dtype=np.uint8)
    out[:, 0] = _QUOTE
    out[:, 37] = _QUOTE
    position = 1
    for start, stop in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)):
        out[:, position : position + stop - start] = hexed[:, start:stop]
        position += stop - start
        if stop != 32:
            out[:, position] = ord("-")
            position += 1
    return out


def _literal(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8)


def key_literal(name: str, first: bool) -> bytes:
    """`"name":`, preceded by a comma unless it is the object's first member."""
    return (b"" if first else b",") + json.dumps(name, ensure_ascii=False).encode() + b":"


def row_bytes(matrix: np.ndarray, row: int) -> bytes:
    """The text of one padded row."""
    values = matrix[row]
    return values[values != PAD].tobytes()


def compress(matrix: np.ndarray) -> np.ndarray:
    """All rows' text, concatenated in row order, padding removed (a flat uint8 array)."""
    return kernels.compress_rows(_kernel_matrix(matrix))[0]


def _kernel_matrix(matrix: np.ndarray) -> np.ndarray:
    """The one array type the compiled kernels take: writable, C-ordered uint8 (so that one
    machine-code version serves every column)."""
    if matrix.flags.c_contiguous and matrix.flags.writeable and matrix.dtype == np.uint8:
        return matrix
    return np.array(matrix, dtype=np.uint8, order="C")


class LineLayout:
    """Assembles lines from key literals and value matrices, with per-row overrides.

    Call `add_field` for each field in order, then the override methods, then `build_text` for
    a range of rows (blocks of a few thousand rows stay in the CPU cache). Overrides replace one
    row's key or value text; `omit_rows` removes a field (key and value) from chosen rows;
    `truncate` cuts a row short; `add_tail` appends text after the last field.
    """

    def __init__(self, n: int, source: np.ndarray | None = None) -> None:
        self.n = n
        # Value matrices may hold more rows than there are lines: line i shows row source[i].
        self.source = np.zeros(0, dtype=np.int64) if source is None else np.ascontiguousarray(source, dtype=np.int64)
        # Each slot is ("literal", bytes of the text) or ("values", an (n, width) matrix).
        self._slots: list[tuple[str, np.ndarray]] = [("literal", _literal(b"{"))]
        self._overrides: list[dict[int, bytes]] = [{}]
        self._field_slots: dict[str, tuple[int, int]] = {}
        self._tail: dict[int, bytes] = {}
        self._bulk_tails: list[tuple[np.ndarray, np.ndarray]] = []  # (rows, padded texts)
        self._garbage: dict[int, bytes] = {}
        self._cuts: dict[int, tuple[float, int]] = {}
        self._omitted: list[tuple[int, np.ndarray]] = []
        self._bulk: list[tuple[int, np.ndarray, np.ndarray]] = []  # (slot, rows, padded texts)
        self._prepared: _Prepared | None = None

    def add_field(self, name: str, values: np.ndarray) -> None:
        """Append `"name":value` (with a leading comma unless it is the first field)."""
        literal = key_literal(name, first=len(self._slots) == 1)
        self._field_slots[name] = (len(self._slots), len(self._slots) + 1)
        self._slots.append(("literal", _literal(literal)))
        self._overrides.append({})
        self._slots.append(("values", values))
        self._overrides.append({})

    def override_value(self, name: str, row: int, text: bytes) -> None:
        """Write `text` as this row's value of `name` (e.g. null, a wrong type)."""
        self._overrides[self._field_slots[name][1]][row] = text

    def override_values(self, name: str, rows: np.ndarray, texts: np.ndarray) -> None:
        """Write many rows' value text at once (`texts`: a padded (len(rows), width) matrix)."""
        if rows.size:
            self._bulk.append((self._field_slots[name][1], np.asarray(rows, dtype=np.int64), texts))

    def override_keys(self, name: str, rows: np.ndarray, new_name: str) -> None:
        """Rename the field in many rows at once."""
        if rows.size:
            key_slot = self._field_slots[name][0]
            literal = _literal(key_literal(new_name, first=key_slot == 1))
            self._bulk.append((key_slot, np.asarray(rows, dtype=np.int64), np.tile(literal, (rows.size, 1))))

    def omit_rows(self, name: str, rows: np.ndarray) -> None:
        """Remove the field, key and value, from many rows at once."""
        if rows.size:
            if not self.can_omit(name):
                raise ValueError(f"the first field ({name}) cannot be omitted")
            rows = np.asarray(rows, dtype=np.int64)
            empty = np.zeros((rows.size, 1), dtype=np.uint8)
            for slot in self._field_slots[name]:
                self._bulk.append((slot, rows, empty))

    def override_key_bytes(self, name: str, row: int, insert: bytes) -> None:
        """Insert raw bytes inside the key name of `name` in this row (e.g. invalid UTF-8)."""
        key_slot = self._field_slots[name][0]
        literal = key_literal(name, first=key_slot == 1)
        cut = literal.index(b'"') + 2
        self._overrides[key_slot][row] = literal[:cut] + insert + literal[cut:]

    def can_omit(self, name: str) -> bool:
        """Whether the field may be left out (any but the first)."""
        return self._field_slots[name][0] != 1

    def omit_mask(self, name: str, mask: np.ndarray) -> None:
        """Remove the field, key and value, from every row where `mask` is true."""
        if not self.can_omit(name):
            raise ValueError(f"the first field ({name}) cannot be omitted")
        if mask.any():
            self._omitted.append((self._field_slots[name][0], mask))

    def add_tail(self, row: int, text: bytes) -> None:
        """Text inside the object after the last field (an added field)."""
        self._tail[row] = text

    def add_tails(self, rows: np.ndarray, texts: np.ndarray) -> None:
        """`add_tail` for many rows at once (`texts`: a padded (len(rows), width) matrix)."""
        if rows.size:
            self._bulk_tails.append((np.asarray(rows, dtype=np.int64), texts))

    def add_garbage(self, row: int, text: bytes) -> None:
        """Text after the closing brace (trailing garbage)."""
        self._garbage[row] = text

    def add_garbages(self, rows: np.ndarray, texts: list[bytes]) -> None:
        """`add_garbage` for many rows at once."""
        self._garbage.update(zip(rows.tolist(), texts, strict=True))

    def truncate_rows(self, rows: np.ndarray, fractions: np.ndarray, after_field: str) -> None:
        """`truncate` for many rows at once."""
        slot = self._field_slots[after_field][1]
        self._cuts.update((row, (fraction, slot)) for row, fraction in zip(rows.tolist(), fractions.tolist(), strict=True))

    def truncate(self, row: int, fraction: float, after_field: str) -> None:
        """Cut the row short somewhere after the value of `after_field` (so the key survives)
        and before its closing brace; `fraction` in [0, 1) picks where. The newline stays."""
        self._cuts[row] = (fraction, self._field_slots[after_field][1])

    def prepare(self) -> _Prepared:
        """Render the irregular rows and freeze the layout (no overrides after this); the
        first `build_text` does it too. Afterwards `build_text` only reads, from any thread."""
        if self._prepared is not None:
            return self._prepared
        slots = list(self._slots)
        overrides = list(self._overrides)
        slots += [(kind, _literal(text)) for kind, text in (("literal", b""), ("literal", b"}"), ("literal", b""), ("literal", b"\n"))]
        overrides += [self._tail, {}, self._garbage, {}]
        bulk: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for slot, bulk_rows, bulk_texts in self._bulk:
            bulk.setdefault(slot, []).append((bulk_rows, bulk_texts))
        bulk.setdefault(len(self._slots), []).extend(self._bulk_tails)  # the slot of the tails
        base_widths = [payload.size if kind == "literal" else payload.shape[1] for kind, payload in slots]
        full_widths = []
        grouped = []
        for index, texts in enumerate(overrides):
            pieces = list(bulk.get(index, []))
            if texts:
                keys = np.fromiter(texts.keys(), dtype=np.int64, count=len(texts))
                pieces.append((keys, bytes_table(list(texts.values()))))
            if not pieces:
                full_widths.append(base_widths[index])
                continue
            width = max(base_widths[index], *(m.shape[1] for _, m in pieces))
            full_widths.append(width)
            all_rows = np.concatenate([r for r, _ in pieces])
            block = np.zeros((all_rows.size, width), dtype=np.uint8)
            offset = 0
            for rows, matrix in pieces:
                block[offset : offset + rows.size, : matrix.shape[1]] = matrix
                offset += rows.size
            order = np.argsort(all_rows, kind="stable")
            grouped.append((index, all_rows[order], block[order]))
        # Fields absent from most rows (a drift only starting to add them) are left out of the
        # template and written on the few rows that carry them.
        sparse = {slot: mask for slot, mask in self._omitted if mask.mean() > 0.5}
        # Rows that differ from the template in any way ("irregular": an override, a field
        # left out or shown, a cut) are rendered once, apart; the kernel copies the rest.
        # A mask, not np.unique of the row lists: a tenth of the rows is touched, and sorting
        # them costs more than marking them.
        touched = np.zeros(self.n, dtype=bool)
        for _, rows, _ in grouped:
            touched[rows] = True
        for slot, mask in self._omitted:
            touched |= ~mask if slot in sparse else mask
        touched[np.fromiter(self._cuts, dtype=np.int64, count=len(self._cuts))] = True
        irregular = np.flatnonzero(touched).astype(np.int64)
        # Each value with the key literal before it, as one piece: the kernel copies half as
        # many pieces per line. The pieces are made as lines are assembled, a block at a time.
        columns: list[np.ndarray] = []
        prefixes: list[np.ndarray] = []
        heads: list[int] = []
        compact: list[bool] = []
        literal = b""
        for index, (kind, payload) in enumerate(slots):
            if index in sparse or index - 1 in sparse:
                continue
            if kind == "literal":
                literal += payload.tobytes()
            else:
                values = _kernel_matrix(payload)
                columns.append(values)
                prefixes.append(kernels.prefix_blocks(literal))
                heads.append(len(literal))
                compact.append(bool(values.size) and not values.all())
                literal = b""
        geometry = _Geometry.of(slots, full_widths, sparse)
        matrix = self._fill(slots, grouped, sparse, geometry, irregular)
        irregular_text, irregular_ends = kernels.compress_rows(_kernel_matrix(matrix))
        self._prepared = _Prepared(
            irregular, irregular_text, irregular_ends, tuple(columns), tuple(prefixes),
            np.asarray(heads, dtype=np.int64), np.asarray(compact, dtype=np.bool_),
            np.frombuffer(literal, dtype=np.uint8).copy(),
        )
        return self._prepared

    def build_text(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The text of rows [start, stop), each line ending in a newline, and the offsets
        where its lines end (stop - start + 1 of them, the first 0)."""
        return self.assemble(np.arange(start, self.n if stop is None else stop, dtype=np.int64))

    def assemble(self, rows: np.ndarray, given: GivenLines | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The text of one line per entry of `rows` (an int64 array) and the offsets where its
        lines end: row r >= 0 as laid out (these in increasing order), -(i + 1) for given line i."""
        prepared = self.prepare()
        given = given or _NO_LINES
        laid_out = rows[rows >= 0]
        low, high = np.searchsorted(prepared.irregular, [laid_out[0], laid_out[-1] + 1]) if laid_out.size else (0, 0)
        return kernels.assemble_lines(
            prepared.columns, prepared.prefixes, prepared.heads, prepared.compact, self.source, prepared.tail, rows,
            prepared.irregular[low:high], prepared.irregular_text, prepared.irregular_ends[low : high + 1],
            given.text, given.ends,
        )

    def _fill(
        self,
        slots: list[tuple[str, np.ndarray]],
        grouped: list[tuple[int, np.ndarray, np.ndarray]],
        sparse: dict[int, np.ndarray],
        geometry: _Geometry,
        rows: np.ndarray,
    ) -> np.ndarray:
        """The padded matrix of the given rows (sorted), every override applied."""
        starts, widths = geometry.starts, geometry.widths
        shown_rows = self.source[rows] if self.source.size else rows
        out = np.empty((rows.size, starts[-1]), dtype=np.uint8)
        # Literals and padding in one broadcast copy, then one strided copy per value column.
        out[:] = geometry.template
        for index, (kind, payload) in enumerate(slots):
            if kind == "values" and index - 1 not in sparse:
                kernels.place_rows(out, starts[index], _kernel_matrix(payload), shown_rows)
        for key_slot, mask in self._omitted:
            if key_slot in sparse:
                shown = np.flatnonzero(~mask[rows])
                literal = slots[key_slot][1]
                values = slots[key_slot + 1][1]
                out[shown, starts[key_slot] : starts[key_slot] + literal.size] = literal
                column = starts[key_slot + 1]
                out[shown, column : column + values.shape[1]] = values[shown_rows[shown]]
            else:
                out[mask[rows], starts[key_slot] : starts[key_slot + 2]] = PAD
        for index, override_rows, block in grouped:
            where = np.searchsorted(rows, override_rows)  # every override row is among `rows`
            out[where, starts[index] : starts[index] + widths[index]] = block[:, : widths[index]]
        if self._cuts:
            cut_rows = np.fromiter(self._cuts, dtype=np.int64, count=len(self._cuts))
            fractions = np.array([fraction for fraction, _ in self._cuts.values()], dtype=np.float64)
            floors = np.array([starts[slot + 1] for _, slot in self._cuts.values()], dtype=np.int64)
            kernels.cut_rows(out, np.searchsorted(rows, cut_rows), fractions, floors)
        return out

    def line(self, row: int) -> bytes:
        """The finished text of one row, newline included."""
        return self.lines([row])[0]

    def lines(self, rows: Sequence[int]) -> list[bytes]:
        """The finished texts of the given rows (sorted), assembled at once."""
        text, ends = self.assemble(np.asarray(rows, dtype=np.int64))
        data = text.tobytes()
        bounds = ends.tolist()
        return [data[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


@dataclass
class GivenLines:
    """Finished lines to place among laid-out ones (line i is text[ends[i]:ends[i + 1]])."""

    text: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, lines: Sequence[bytes]) -> GivenLines:
        text = np.frombuffer(b"".join(lines), dtype=np.uint8) if lines else np.zeros(0, dtype=np.uint8)
        return cls(text, np.cumsum([0, *(len(line) for line in lines)]).astype(np.int64))


_NO_LINES = GivenLines.of([])


@dataclass
class _Geometry:
    """Column widths and positions of one rendering, and its row of literals."""

    widths: list[int]
    starts: list[int]
    template: np.ndarray

    @classmethod
    def of(cls, slots: list[tuple[str, np.ndarray]], widths: list[int], sparse: dict[int, np.ndarray]) -> _Geometry:
        starts = np.concatenate([[0], np.cumsum(widths)]).astype(int).tolist()
        template = np.zeros(starts[-1], dtype=np.uint8)
        for index, ((kind, payload), start) in enumerate(zip(slots, starts[:-1], strict=True)):
            if kind == "literal" and payload.size and index not in sparse:
                template[start : start + payload.size] = payload
        return cls(widths, starts, template)


@dataclass
class _Prepared:
    irregular: np.ndarray  # sorted rows that differ from the template
    irregular_text: np.ndarray  # their lines, rendered once
    irregular_ends: np.ndarray
    columns: tuple[np.ndarray, ...]  # the template's values, in line order
    prefixes: tuple[np.ndarray, ...]  # the key literal before each (see kernels.prefix_blocks)
    heads: np.ndarray  # the length of each key literal
    compact: np.ndarray  # whether a column has padding to leave out
    tail: np.ndarray  # the template's literal after the last value
