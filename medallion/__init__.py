"""medallion: a streaming lakehouse you can stand up in one command and prove right."""

from __future__ import annotations

__version__ = "0.1.0"
