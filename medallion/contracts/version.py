"""The project's version, written into every manifest and shown by `--version`."""

from __future__ import annotations

__version__ = "0.1.0"
