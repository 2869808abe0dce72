"""medallion: a streaming lakehouse you can stand up in one command and prove right."""

from __future__ import annotations

from medallion.contracts.version import __version__

__all__ = ["__version__"]
