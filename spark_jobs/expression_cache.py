"""Column expressions built once per process and reused by every micro-batch.

Building a Column costs Py4J round trips, about 0.15 ms each, and silver's classification of an
entity takes some ten thousand of them: 1.5-2 s per micro-batch, whatever its size. A Column is
an unresolved expression that analysis copies and never changes, so one built for an entity
serves every DataFrame of that entity (docs/performance.md, "Fixed cost per micro-batch").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pyspark import SparkContext

T = TypeVar("T")

_LIMIT = 256  # entries: a scenario needs a handful per entity; tests build many scenarios
_BUILT: OrderedDict[tuple[Hashable, ...], tuple[object, Any]] = OrderedDict()
_LOCK = threading.Lock()  # queries of one stage run their micro-batches in parallel threads


def built_once(name: str, owner: object, build: Callable[[], T], *extra: Hashable) -> T:
    """`build()`, or what it returned before for the same `name`, the same `owner` object (by
    identity: scenario models are frozen but hold dicts) and equal `extra` values, in the same
    JVM. The entry keeps `owner` alive, so its identity cannot be reused by another object."""
    key = (name, id(SparkContext._gateway), id(owner), *extra)
    with _LOCK:
        hit = _BUILT.get(key)
        if hit is not None and hit[0] is owner:
            _BUILT.move_to_end(key)
            return hit[1]
    value = build()
    with _LOCK:
        _BUILT[key] = (owner, value)
        while len(_BUILT) > _LIMIT:
            _BUILT.popitem(last=False)
    return value
