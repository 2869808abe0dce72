"""Vocabularies shipped with the project: `generators/vocabularies/NAME.txt`, one word a line."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from medallion.contracts.errors import ConfigError

VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabularies"


def available() -> list[str]:
    """Names of the shipped vocabularies."""
    return sorted(p.stem for p in VOCABULARY_DIR.glob("*.txt"))


@cache
def load(name: str) -> tuple[str, ...]:
    """The words of one vocabulary (blank lines and `#` comments skipped), in file order."""
    path = VOCABULARY_DIR / f"{name}.txt"
    if not path.is_file():
        raise ConfigError("vocabulary", [f"unknown vocabulary {name!r}; use one of {available()}"])
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    if not words:
        raise ConfigError("vocabulary", [f"vocabulary {name!r} ({path}) holds no words"])
    return tuple(words)
