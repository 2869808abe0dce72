"""Compiled loops over numpy arrays, for the generator's two hottest steps (see generators.encode).

Value columns: digits, fixed-point numbers and timestamps become padded byte matrices in one
pass per column (numpy needs a pass per digit group and a lookup table per piece). Lines: each
value, with its key literal before it and its padding moved to the end, is one piece; a line is
its pieces copied at full width, each advancing the end by its length, one block of rows at a
time (numpy's boolean indexing walks every byte with a branch, and a newline scan reads the
block again to find where lines end).

Every kernel takes and returns plain arrays, so it runs without the GIL (`nogil`) beside the
other threads (the line layout runs in the writer's stager thread while the engine samples the
next batch); its machine code is cached beside this file after the first run (`cache`). The bytes are exactly those the numpy formulation gave (tests
compare them with Python's own formatting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# Offsets are unsigned: numba checks every signed array index for a negative (wrap-around)
# value, and that check alone keeps the copy loops out of vector instructions (figures in
# docs/performance.md, "Figures behind the code").
_U0 = np.uint64(0)

# Pieces are copied in blocks of this many bytes, each one unaligned vector load and store: a
# copy loop over a width known only at run time ends in a byte-by-byte remainder, which would
# take about half of line assembly's time.
BLOCK = 32
_BLOCK = np.uint64(BLOCK)


def _contiguous_bytes(*arrays: Any) -> bool:
    """Whether numba types these as C-ordered uint8 arrays: the raw-memory intrinsics below
    compute byte offsets from the start of the buffer, wrong for any other layout, so they
    refuse to compile for one."""
    return all(isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.uint8 for a in arrays)


@intrinsic
def _block_copier(typingctx: Any, dst: Any, dst_at: Any, src: Any, src_at: Any) -> Any:
    """Copy BLOCK bytes from byte `src_at` of array `src`'s buffer to byte `dst_at` of `dst`'s
    (C-ordered uint8 arrays of any shape). Nothing is bounds-checked: callers keep both ranges
    inside their buffers."""
    if not _contiguous_bytes(dst, src):
        return None
    signature = types.void(dst, dst_at, src, src_at)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        dst_array = context.make_array(sig.args[0])(context, builder, args[0])
        src_array = context.make_array(sig.args[2])(context, builder, args[2])
        target = builder.gep(dst_array.data, [args[1]])
        origin = builder.gep(src_array.data, [args[3]])
        cgutils.raw_memcpy(builder, target, origin, ir.Constant(ir.IntType(64), BLOCK), 1)
        return context.get_dummy_value()

    return signature, codegen


# What compiled code calls: (dst, dst_at, src, src_at); numba passes the typing context itself.
_copy_block = cast(Callable[[np.ndarray, Any, np.ndarray, Any], None], _block_copier)


@intrinsic
def _word_loader(typingctx: Any, array: Any, at: Any) -> Any:
    """The 8 bytes at byte `at` of a uint8 array's buffer, as one (unaligned) uint64."""
    if not _contiguous_bytes(array):
        return None
    signature = types.uint64(array, at)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return signature, codegen


@intrinsic
def _word_storer(typingctx: Any, array: Any, at: Any, word: Any) -> Any:
    """Store a uint64 as the 8 bytes at byte `at` of a uint8 array's buffer (unaligned)."""
    if not _contiguous_bytes(array):
        return None
    signature = types.void(array, at, word)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        builder.store(args[2], pointer, align=1)
        return context.get_dummy_value()

    return signature, codegen


_load_word = cast(Callable[[np.ndarray, Any], np.uint64], _word_loader)
_store_word = cast(Callable[[np.ndarray, Any, np.uint64], None], _word_storer)
_ONES = np.uint64(0x0101010101010101)
_HIGHS = np.uint64(0x8080808080808080)
_EIGHT = np.uint64(8)


@njit(nogil=True, cache=True)
def compress_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows' text without padding, concatenated, and where each row ends (n + 1 offsets).

    Eight bytes at a time: a word without a zero byte (most of a line's text) is stored whole;
    one with padding goes byte by byte, branch-free (padding is written, then overwritten).
    Byte by byte throughout is slower (docs/performance.md, "Figures behind the code")."""
    n, width = matrix.shape
    w = np.uint64(width)
    out = np.empty(n * width + 8, dtype=np.uint8)  # room for a whole last word
    ends = np.empty(n + 1, dtype=np.int64)
    ends[0] = 0
    k = _U0
    words = w // _EIGHT
    for i in range(np.uint64(n)):
        base = i * w
        for c in range(words):
            word = _load_word(matrix, base + c * _EIGHT)
            if (word - _ONES) & ~word & _HIGHS == 0:  # no zero byte in the word
                _store_word(out, k, word)
                k += _EIGHT
            else:
                for j in range(c * _EIGHT, c * _EIGHT + _EIGHT):
                    byte = matrix[i, j]
                    out[k] = byte
                    k += np.uint64(byte != 0)
        for j in range(words * _EIGHT, w):
            byte = matrix[i, j]
            out[k] = byte
            k += np.uint64(byte != 0)
        ends[i + 1] = k
    return out[:k], ends


def piece_width(prefix_size: int, value_width: int) -> int:
    """The width of a piece (a key literal, then a value): a whole number of blocks."""
    return -(-(prefix_size + value_width) // BLOCK) * BLOCK


def prefix_blocks(prefix: bytes) -> np.ndarray:
    """A key literal padded to a whole number of blocks, so that it is copied by blocks."""
    text = np.zeros(-(-len(prefix) // BLOCK) * BLOCK, dtype=np.uint8)
    text[: len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    return text


@njit(nogil=True, cache=True)
def fill_pieces(
    pieces: np.ndarray, offset: int, matrix: np.ndarray, prefix: np.ndarray, head: int, compact: bool,
    value_rows: np.ndarray, lengths: np.ndarray, column: int,
) -> None:
    """Piece `column` of each line, at `pieces[t, offset:]` for line t, which shows row
    `value_rows[t]` of `matrix`: the key literal (`prefix`: `head` bytes, padded to whole
    blocks), then the row's bytes but its padding (every byte, unless `compact`); how many
    bytes that is goes to `lengths[t, column]`. The piece's width is `piece_width(head, width)`;
    a value copied by blocks may run up to a block past it, into the next piece of the line
    (filled afterwards) or, for the last, into a block of room at the end of each row of
    `pieces`. The bytes after a piece's text are left as they fall: `assemble_lines` copies a
    piece at its full width without looking at them, and the next piece overwrites them."""
    n, width = matrix.shape
    w = np.uint64(width)
    stride = np.uint64(pieces.shape[1])
    first = np.uint64(offset)
    start = np.uint64(head)
    blocks = (w + _BLOCK - np.uint64(1)) // _BLOCK
    readable = np.uint64(n) * w  # a block read from a row must end inside the matrix
    for t in range(np.uint64(value_rows.size)):
        i = np.uint64(value_rows[t])
        at = t * stride + first
        for c in range(np.uint64(prefix.size) // _BLOCK):
            _copy_block(pieces, at + c * _BLOCK, prefix, c * _BLOCK)
        if compact:
            k = first + start
            for j in range(w):
                byte = matrix[i, j]
                pieces[t, k] = byte
                k += np.uint64(byte != 0)  # branch-free: padding is written, then overwritten
            lengths[t, column] = k - first
        else:
            origin = i * w
            if origin + blocks * _BLOCK <= readable:
                for c in range(blocks):
                    _copy_block(pieces, at + start + c * _BLOCK, matrix, origin + c * _BLOCK)
            else:
                for j in range(w):
                    pieces[t, first + start + j] = matrix[i, j]
            lengths[t, column] = start + w


@njit(nogil=True, cache=True)
def assemble_lines(
    columns: tuple[np.ndarray, ...],
    prefixes: tuple[np.ndarray, ...],
    heads: np.ndarray,
    compact: np.ndarray,
    source: np.ndarray,
    tail: np.ndarray,
    rows: np.ndarray,
    irregular: np.ndarray,
    irregular_text: np.ndarray,
    irregular_ends: np.ndarray,
    repeat_text: np.ndarray,
    repeat_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One line per entry of `rows`: row r >= 0 is key literal 0 and value 0, key literal 1
    and value 1, ..., then the `tail`; an entry -(i + 1) is given text i (a duplicate's line).

    Values are read at row `source[r]` of `columns` (at `r` itself when `source` is empty),
    each without its padding (all of it, unless `compact[c]`), after `prefixes[c]` (its first
    `heads[c]` bytes). The rows >= 0 are in increasing order. Rows listed in `irregular`
    (sorted, none below the first row) are copied from `irregular_text` instead (its line i is
    `irregular_text[irregular_ends[i]:irregular_ends[i + 1]]`); given text i is
    `repeat_text[repeat_ends[i]:repeat_ends[i + 1]]`. Returns the text and the len(rows) + 1
    offsets where lines end.

    First each key literal with its value becomes one piece per line (`fill_pieces`), for
    these rows only: a writer's block of lines at a time, the pieces stay in the CPU cache
    between being made and copied (made for a whole batch ahead, they cost twice as much, in
    memory traffic). Then row by row, so the output is written once, front to back (column by
    column revisits the whole output once per column). A piece is copied
    at its full width by blocks and the end moved by its length: the next piece overwrites the
    rest, and a fixed-length copy runs in vector instructions where a byte-by-byte one that
    skips padding cannot.
    """
    count = rows.size
    laid_out = 0
    for line in range(count):
        laid_out += rows[line] >= 0
    value_rows = np.empty(laid_out, dtype=np.int64)
    t = 0
    for line in range(count):
        if rows[line] >= 0:
            value_rows[t] = rows[line] if source.size == 0 else source[rows[line]]
            t += 1
    offsets = np.zeros(len(columns) + 1, dtype=np.int64)
    for c in range(len(columns)):
        offsets[c + 1] = offsets[c] + (heads[c] + columns[c].shape[1] + BLOCK - 1) // BLOCK * BLOCK
    pieces = np.empty((laid_out, offsets[-1] + BLOCK), dtype=np.uint8)  # see fill_pieces
    lengths = np.empty((laid_out, len(columns)), dtype=np.int32)
    for c in range(len(columns)):
        fill_pieces(pieces, offsets[c], columns[c], prefixes[c], heads[c], compact[c], value_rows, lengths, c)

    row_width = tail.size + offsets[-1]
    # Irregular rows and given texts may be longer than the template: room for all of them.
    size = count * row_width + irregular_ends[-1] - irregular_ends[0]
    for line in range(count):
        if rows[line] < 0:
            size += repeat_ends[-rows[line]] - repeat_ends[-rows[line] - 1]
    out = np.empty(size, dtype=np.uint8)
    ends = np.empty(count + 1, dtype=np.int64)
    ends[0] = 0
    k = _U0
    following = 0
    t = 0
    stride = np.uint64(pieces.shape[1])
    for line in range(count):
        row = rows[line]
        if row < 0:
            k = _copy(out, k, repeat_text, repeat_ends[-row - 1], repeat_ends[-row])
        else:
            while following < irregular.size and irregular[following] < row:
                following += 1
            if following < irregular.size and irregular[following] == row:
                k = _copy(out, k, irregular_text, irregular_ends[following], irregular_ends[following + 1])
                following += 1
            else:
                origin = np.uint64(t) * stride
                for c in range(len(columns)):
                    first = origin + np.uint64(offsets[c])
                    for b in range(np.uint64(offsets[c + 1] - offsets[c]) // _BLOCK):
                        _copy_block(out, k + b * _BLOCK, pieces, first + b * _BLOCK)
                    k += np.uint64(lengths[t, c])
                k = _copy(out, k, tail, 0, tail.size)
            t += 1
        ends[line + 1] = k
    return out[:k], ends


@njit(nogil=True, cache=True)
def place_rows(out: np.ndarray, column: int, values: np.ndarray, rows: np.ndarray) -> None:
    """out[i, column:column + width] = values[rows[i]] for every i (numpy's gather, then a
    strided copy, took 2.5x as long for the few bytes of each row)."""
    first = np.uint64(column)
    for i in range(rows.size):
        row = np.uint64(rows[i])
        for j in range(np.uint64(values.shape[1])):
            out[i, first + j] = values[row, j]


@njit(nogil=True, cache=True)
def cut_rows(out: np.ndarray, lines: np.ndarray, fractions: np.ndarray, floors: np.ndarray) -> None:
    """Truncate rows in place: row lines[i] keeps its text up to column floors[i] and then the
    share fractions[i] of the text after it, but never its last byte (the newline); the rest
    becomes padding."""
    width = out.shape[1]
    for i in range(lines.size):
        line = lines[i]
        before = 0
        for j in range(floors[i]):
            before += out[line, j] != 0
        after = 0
        for j in range(floors[i], width - 1):
            after += out[line, j] != 0
        keep = before + int(fractions[i] * max(after - 1, 0))
        seen = 0
        for j in range(width - 1):
            if out[line, j] != 0:
                if seen >= keep:
                    out[line, j] = 0
                seen += 1


# The two copies below are functions of their own: LLVM inlines them and optimises the row
# loop better than the same loops written in place.


@njit(nogil=True, cache=True)
def _copy(out: np.ndarray, k: np.uint64, text: np.ndarray, start: int, stop: int) -> np.uint64:
    """Copy text[start:stop] to out[k:]; returns the new end. A plain loop, not a slice
    assignment: a slice costs more than the few bytes it copies."""
    first = np.uint64(start)
    for t in range(np.uint64(stop - start)):
        out[k + t] = text[first + t]
    return k + np.uint64(stop - start)


# --- numbers and instants as padded text (one pass per column instead of one per digit) ----


# Digits by unsigned division by the constant 10, which compiles to a multiplication; signed
# or variable divisors cost an order of magnitude more per digit.
_TEN = np.uint64(10)


@njit(nogil=True, cache=True)
def instants_from_spacings(spacings: np.ndarray, start: int, end: int) -> np.ndarray:
    """`start + (cumsum(spacings)[:-1] / cumsum(spacings)[-1] * (end - start)).astype(int64)`:
    the same additions in the same order, in two passes instead of five."""
    total = 0.0
    for i in range(spacings.size):
        total += spacings[i]
    out = np.empty(spacings.size - 1, dtype=np.int64)
    running = 0.0
    span = float(end - start)
    for i in range(spacings.size - 1):
        running += spacings[i]
        out[i] = start + np.int64(running / total * span)
    return out


@njit(nogil=True, cache=True)
def scaled_integers(values: np.ndarray, scale: float, low: float, high: float) -> np.ndarray:
    """`np.clip(np.rint(values * scale), low, high).astype(np.int64)` in one pass instead of
    four; NaN becomes the int64 minimum, as numpy's
    conversion makes it on x86."""
    out = np.empty(values.size, dtype=np.int64)
    for i in range(values.size):
        x = np.rint(values[i] * scale)
        x = min(max(x, low), high)
        out[i] = np.int64(x) if x == x else np.iinfo(np.int64).min
    return out


@njit(nogil=True, cache=True)
def quoted_sequence_text(numbers: np.ndarray, head: np.ndarray, width: int) -> np.ndarray:
    """`head` (an opening quote and a prefix), the non-negative ints below 10**width
    zero-padded to `width` digits, a closing quote: (n, head + width + 1) ASCII in one pass."""
    h = head.size
    out = np.empty((numbers.size, h + width + 1), dtype=np.uint8)
    for i in range(numbers.size):
        for j in range(h):
            out[i, j] = head[j]
        rest = np.uint64(numbers[i])
        for t in range(width):
            out[i, h + width - 1 - t] = 48 + rest % _TEN
            rest //= _TEN
        out[i, h + width] = 34
    return out


@njit(nogil=True, cache=True)
def fixed_point_text(magnitude: np.ndarray, negative: np.ndarray, places: int, head_width: int, signed: bool) -> np.ndarray:
    """Numbers given in units of 10**-places as [sign][whole][.][fraction] in fixed columns.

    The sign column holds '-' or padding; the whole part is right-aligned without leading
    zeros (at least one digit); the fraction keeps its first digit and pads trailing zeros.
    Two digits per division, from a table of the pairs "00".."99": half the divisions.
    """
    point = head_width + (1 if signed else 0)
    out = np.zeros((magnitude.size, point + 1 + places), dtype=np.uint8)
    for i in range(magnitude.size):
        rest = np.uint64(magnitude[i])
        j = point + places
        if places % 2:
            out[i, j] = 48 + rest % _TEN
            rest //= _TEN
            j -= 1
        while j > point:
            rest = _write_pair(out, i, j, rest)
            j -= 2
        j = point + places
        while j > point + 1 and out[i, j] == 48:  # trailing zeros of the fraction
            out[i, j] = 0
            j -= 1
        out[i, point] = 46
        j = point - 1
        while rest >= _HUNDRED:
            rest = _write_pair(out, i, j, rest)
            j -= 2
        if rest >= _TEN:
            _write_pair(out, i, j, rest)
        else:
            out[i, j] = 48 + rest
        if signed and negative[i]:
            out[i, 0] = 45
    return out


_PAIRS = np.array([ord(c) for i in range(100) for c in f"{i:02d}"], dtype=np.uint8)


@njit(nogil=True, cache=True)
def _write_pair(out: np.ndarray, row: int, last: int, value: np.uint64) -> np.uint64:
    """Write the last two digits of `value` ending at out[row, last]; returns value // 100."""
    pair = (value % _HUNDRED) * np.uint64(2)
    out[row, last] = _PAIRS[pair + np.uint64(1)]
    out[row, last - 1] = _PAIRS[pair]
    return value // _HUNDRED


@njit(nogil=True, cache=True)
def plain_digits_text(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative ints without leading zeros, right-aligned in `width` columns."""
    out = np.zeros((values.size, width), dtype=np.uint8)
    for i in range(values.size):
        _right_aligned_digits(out, i, width - 1, np.uint64(values[i]))
    return out


@njit(nogil=True, cache=True)
def _right_aligned_digits(out: np.ndarray, row: int, last: int, value: np.uint64) -> None:
    """Write `value`'s digits into out[row], its last digit at column `last`, no leading zeros."""
    while True:
        out[row, last] = 48 + value % _TEN
        value //= _TEN
        last -= 1
        if value == 0:
            break


@njit(nogil=True, cache=True)
def timestamp_text(epoch_ms: np.ndarray, dates: np.ndarray, first_day: int) -> np.ndarray:
    """Quoted "YYYY-MM-DDTHH:MM:SS.mmmZ" (26 bytes); `dates[d - first_day]` is day d's text.

    Unsigned arithmetic from the first day's midnight (no instant lies before it): division by
    a constant then compiles to a multiplication without the fix-ups for negative numbers,
    which halved the time of this loop."""
    out = np.empty((epoch_ms.size, 26), dtype=np.uint8)
    origin = first_day * 86_400_000
    for i in range(epoch_ms.size):
        since = np.uint64(epoch_ms[i] - origin)
        day = since // _DAY_MS
        in_day = since - day * _DAY_MS
        seconds = in_day // _THOUSAND
        millis = in_day - seconds * _THOUSAND
        hours = seconds // _HOUR_S
        rest = seconds - hours * _HOUR_S
        minutes = rest // _SIXTY
        secs = rest - minutes * _SIXTY
        out[i, 0] = 34
        for j in range(10):
            out[i, 1 + j] = dates[day, j]
        out[i, 11] = 84  # T
        out[i, 12] = 48 + hours // _TEN
        out[i, 13] = 48 + hours % _TEN
        out[i, 14] = 58
        out[i, 15] = 48 + minutes // _TEN
        out[i, 16] = 48 + minutes % _TEN
        out[i, 17] = 58
        out[i, 18] = 48 + secs // _TEN
        out[i, 19] = 48 + secs % _TEN
        out[i, 20] = 46
        out[i, 21] = 48 + millis // _HUNDRED
        out[i, 22] = 48 + millis // _TEN % _TEN
        out[i, 23] = 48 + millis % _TEN
        out[i, 24] = 90  # Z
        out[i, 25] = 34
    return out


_HUNDRED, _THOUSAND, _SIXTY, _HOUR_S, _DAY_MS = np.uint64(100), np.uint64(1000), np.uint64(60), np.uint64(3600), np.uint64(86_400_000)
