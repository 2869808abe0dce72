"""Byte and text helpers for tests of the line classifier."""

from __future__ import annotations


def is_utf8(data: bytes) -> bool:
    """Whether `data` decodes as UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
