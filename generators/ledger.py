"""The defect ledger of one entity in one batch, encoded in bulk (docs/design.md §3.5).

Every entry is compact JSON (`{"file":...,"line":...,"kind":...,"key":...,...}`) built like the
data lines: a padded byte matrix, one row per entry, made of literal pieces and encoded columns
(file names, line numbers, keys as the JSON text they already have in the data). Rows are put in
file and line order with one lexsort and compressed once. A ledger of thousands of entries then
costs about as much as as many data lines, and no entry passes through Python one by one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generators import encode
from medallion.contracts.defects import DefectKind

SEPARATOR = b",\n  "  # manifests write one ledger entry per line


@dataclass
class Ledger:
    """Ledger entries as manifest text: JSON objects joined by `SEPARATOR`, in file/line order."""

    text: str = ""
    count: int = 0

    def entries(self) -> list[dict[str, Any]]:
        """The entries as dicts (for tests and tools; the writer uses `text`)."""
        return json.loads("[" + self.text + "]") if self.count else []


def concat_columns(count: int, pieces: list[bytes | np.ndarray]) -> np.ndarray:
    """Literal byte strings (repeated on every row) and (count, w) matrices, side by side."""
    widths = [len(p) if isinstance(p, bytes) else p.shape[1] for p in pieces]
    out = np.empty((count, sum(widths)), dtype=np.uint8)
    position = 0
    for piece, width in zip(pieces, widths, strict=True):
        out[:, position : position + width] = np.frombuffer(piece, dtype=np.uint8) if isinstance(piece, bytes) else piece
        position += width
    return out


def quoted(texts: np.ndarray, is_string: bool) -> np.ndarray:
    """JSON texts as JSON strings: strings as they are, numbers wrapped in quotes."""
    if is_string:
        return texts
    quote = np.full((texts.shape[0], 1), ord('"'), dtype=np.uint8)
    return np.hstack([quote, texts, quote])


def key_json(key_texts: np.ndarray, rows: np.ndarray) -> list[str]:
    """The ledger's `key` of each row as JSON text, from the key column's padded JSON texts: the
    key's own JSON string, or a number in quotes (the ledger's key is always a string)."""
    if rows.size == 0:
        return []
    texts = np.take(key_texts, rows, axis=0)
    fixed = texts.view(f"S{texts.shape[1]}").ravel()  # trailing padding dropped
    try:
        # Keys are ASCII (sequences, UUIDs): one conversion for all of them.
        values: list[str] = fixed.astype(f"U{texts.shape[1]}").tolist()
    except UnicodeDecodeError:
        values = [t.decode("utf-8") for t in fixed.tolist()]
    if (texts[:, 1:-1] == 0).any():  # padding inside a key (a sequence that outgrew its width)
        values = [t.replace(b"\x00", b"").decode("utf-8") for t in fixed.tolist()]
    if values[0].startswith('"'):
        return values
    return [v if v.startswith('"') else f'"{v}"' for v in values]


@dataclass
class LedgerBuilder:
    """Collects groups of entries of one entity in one batch, then encodes them all at once.

    `key_texts` is the key column of the batch's generated rows (padded JSON texts, one row
    each); entries name their keys by row. Lines are 1-based within their part (file)."""

    file_names: list[str]
    key_texts: np.ndarray
    key_is_string: bool
    _groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._files = encode.bytes_table([json.dumps(name)[1:-1].encode() for name in self.file_names] or [b""])

    def add_defects(
        self, parts: np.ndarray, lines: np.ndarray, kind: DefectKind, key_rows: np.ndarray, field_name: str | None, change: str | None
    ) -> None:
        """Entries of one kind (on one field, for one drift change) for the rows `key_rows`."""
        tail = b""
        if field_name is not None:
            tail += b',"field":"' + field_name.encode() + b'"'
        if change is not None:
            tail += b',"change":"' + change.encode() + b'"'
        self._add(parts, lines, kind, self._keys(key_rows), tail)

    def add_repeats(
        self, parts: np.ndarray, lines: np.ndarray, key_rows: np.ndarray, source_parts: np.ndarray, source_lines: np.ndarray
    ) -> None:
        """Duplicates of lines of this batch: `repeats` names the line each repeats."""
        tail = concat_columns(
            int(parts.size), [b',"repeats":"', self._file_column(source_parts), b":", encode.encode_int(source_lines), b'"']
        )
        self._add(parts, lines, DefectKind.DUPLICATE, self._keys(key_rows), tail)

    def add_earlier_repeats(self, parts: np.ndarray, lines: np.ndarray, keys: list[str], sources: list[str]) -> None:
        """Duplicates of lines of an earlier batch, given by their keys' JSON texts and their
        `file:line`."""
        self._add(
            parts,
            lines,
            DefectKind.DUPLICATE,
            encode.bytes_table([key.encode() for key in keys]),
            encode.bytes_table([f',"repeats":"{source}"'.encode() for source in sources]),
        )

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        return quoted(np.take(self.key_texts, rows, axis=0), self.key_is_string)

    def _file_column(self, parts: np.ndarray) -> np.ndarray:
        """File names (without quotes) of the given parts."""
        return np.take(self._files, parts, axis=0)

    def _add(self, parts: np.ndarray, lines: np.ndarray, kind: DefectKind, keys: np.ndarray, tail: bytes | np.ndarray) -> None:
        """Entries for lines `lines` of parts `parts`, all of one kind. `keys` holds the key of
        each as JSON string text; `tail` the members after the key (with a leading comma), the
        same for all or one row each."""
        count = int(parts.size)
        if count == 0:
            return
        matrix = concat_columns(
            count,
            [
                b'{"file":"',
                self._file_column(parts),
                b'","line":',
                encode.encode_int(lines),
                b',"kind":"' + kind.encode() + b'","key":',
                keys,
                tail,
                b"}" + SEPARATOR,
            ],
        )
        self._groups.append((np.asarray(parts, dtype=np.int64), np.asarray(lines, dtype=np.int64), matrix))

    def build(self) -> Ledger:
        """All entries, in file and line order."""
        if not self._groups:
            return Ledger()
        width = max(m.shape[1] for _, _, m in self._groups)
        count = sum(m.shape[0] for _, _, m in self._groups)
        stacked = np.zeros((count, width), dtype=np.uint8)
        offset = 0
        for _, _, matrix in self._groups:
            stacked[offset : offset + matrix.shape[0], : matrix.shape[1]] = matrix
            offset += matrix.shape[0]
        parts = np.concatenate([p for p, _, _ in self._groups])
        lines = np.concatenate([n for _, n, _ in self._groups])
        order = np.lexsort((lines, parts))
        text = encode.compress(np.take(stacked, order, axis=0)).tobytes()
        return Ledger(text=text[: -len(SEPARATOR)].decode("utf-8"), count=count)
