"""Compiled loops over padded byte matrices (see generators.encode).

numpy has no fast way to drop the zero padding from a matrix and lay value columns side by
side: boolean indexing walks every byte with a branch, and each extra pass reads the whole
block again. These kernels do the last step of encoding, from value matrices to finished
lines, in one pass per block. They hold no Python objects, so they run without the GIL
(`nogil`) while the writer thread hashes and writes the previous batch, and their machine code
is cached beside this file after the first run (`cache`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def compress_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows' text without padding, concatenated, and where each row ends (n + 1 offsets)."""
    n, width = matrix.shape
    out = np.empty(n * width, dtype=np.uint8)
    ends = np.empty(n + 1, dtype=np.int64)
    ends[0] = 0
    k = 0
    for i in range(n):
        for j in range(width):
            byte = matrix[i, j]
            out[k] = byte
            k += byte != 0  # branch-free: padding is written, then overwritten
        ends[i + 1] = k
    return out[:k], ends


@njit(nogil=True, cache=True)
def assemble_lines(
    columns: tuple[np.ndarray, ...],
    literals: np.ndarray,
    literal_ends: np.ndarray,
    start: int,
    stop: int,
    irregular: np.ndarray,
    irregular_text: np.ndarray,
    irregular_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Lines of rows [start, stop): literal 0, column 0, literal 1, ..., column c-1, literal c.

    `literals` holds the c + 1 literals back to back (literal i is
    `literals[literal_ends[i]:literal_ends[i + 1]]`); each column is an (n, width) padded
    matrix over all rows. Rows listed in `irregular` (sorted, within the range) are copied
    from `irregular_text` instead (its line i is
    `irregular_text[irregular_ends[i]:irregular_ends[i + 1]]`). Returns the text and the
    stop - start + 1 offsets where lines end.

    Row by row, so the output is written once, front to back (column by column measured
    slower: it revisits the whole output once per column).
    """
    count = stop - start
    row_width = literal_ends[-1]
    for c in range(len(columns)):
        row_width += columns[c].shape[1]
    out = np.empty(count * row_width + irregular_text.size, dtype=np.uint8)
    ends = np.empty(count + 1, dtype=np.int64)
    ends[0] = 0
    k = 0
    following = 0
    for row in range(start, stop):
        # Plain loops, not slice assignments: a slice costs more than the few bytes it copies.
        if following < irregular.size and irregular[following] == row:
            for t in range(irregular_ends[following], irregular_ends[following + 1]):
                out[k] = irregular_text[t]
                k += 1
            following += 1
        else:
            for c in range(len(columns) + 1):
                for t in range(literal_ends[c], literal_ends[c + 1]):
                    out[k] = literals[t]
                    k += 1
                if c < len(columns):
                    values = columns[c]
                    for j in range(values.shape[1]):
                        byte = values[row, j]
                        out[k] = byte
                        k += byte != 0  # branch-free: padding is written, then overwritten
        ends[row - start + 1] = k
    return out[:k], ends
