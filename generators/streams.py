"""Independent, named random streams: one `numpy.random.Generator` per (entity, purpose, batch).

Every stream is derived from the run's seed and stable names (never Python's salted `hash`),
so a stream's draws depend only on what it is for. Turning one defect kind on or off, adding a
field or resuming at batch 1,000 leaves every other stream's numbers untouched.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def name_key(name: str) -> int:
    """A stable 63-bit integer for a name."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") >> 1


class Streams:
    """Factory of the run's random streams."""

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError("the seed must be a non-negative integer")
        self.seed = seed

    def rng(self, entity: str, purpose: str, batch: int = -1) -> np.random.Generator:
        """The stream for one purpose of one entity in one batch (batch -1: the whole run)."""
        key = (name_key(entity), name_key(purpose), batch + 1)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))

    def salt(self, entity: str, purpose: str) -> np.uint64:
        """A 64-bit salt for stateless per-unit hashing (see `hash_uniform`)."""
        digest = hashlib.sha256(f"{self.seed}/{entity}/{purpose}".encode()).digest()
        return np.uint64(int.from_bytes(digest[:8], "big"))


def hash_uniform(keys: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Uniform [0, 1) numbers that are a pure function of (key, salt): splitmix64 finaliser.

    Used where a draw must not depend on which batch asks (e.g. whether engine 17's sensor is
    stuck on day 40), so no state has to be carried from batch to batch.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(keys, dtype=np.int64).astype(np.uint64) ^ salt
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
