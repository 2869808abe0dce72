"""The arrival process: how many rows each unit emits in a batch, and when.

Per unit per tick of `arrival.every` (ticks aligned to the clock start), the count is
Poisson(lambda(t)) with lambda(t) = rate x hour_of_day[hour(t)] x day_of_week[weekday(t)], or a
fixed count (a set frequency), or uniform in a range. A batch holds the ticks that start in its
interval. Rows of a tick get instants within the tick, in time order. Counts come from their
own stream, so a restart can replay them cheaply without drawing any values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generators import kernels
from generators.samplers import MS_PER_HOUR, Frame, shape_multipliers
from generators.streams import Streams, hash_uniform
from medallion.contracts.scenario import Arrival, Entity


@dataclass
class Rows:
    """The rows one entity gets in one batch, before any value is sampled."""

    times: np.ndarray  # arrival instant, epoch ms (in time order within each tick)
    unit: np.ndarray | None = None  # row of the unit entity's universe
    parent: np.ndarray | None = None  # row of the parent entity's batch

    @property
    def n(self) -> int:
        return int(self.times.size)


def ticks(arrival: Arrival, clock_start: int, interval: tuple[int, int]) -> list[tuple[int, int]]:
    """(tick start, window end) of every tick starting in [start, end) of the batch."""
    every = int(arrival.every.total_seconds() * 1000)
    start, end = interval
    first = -(-(start - clock_start) // every)  # ceiling division
    result = []
    k = max(first, 0)
    while clock_start + k * every < end:
        tick = clock_start + k * every
        result.append((tick, min(tick + every, end)))
        k += 1
    return result


def rate_at(arrival: Arrival, instant: int) -> float:
    """lambda(t): the arrival rate per unit at one instant."""
    factor = shape_multipliers(arrival.hour_of_day, arrival.day_of_week, np.asarray([instant]))[0]
    return float(arrival.rate * factor)


def active_units(arrival: Arrival, universe: Frame, instant: int) -> np.ndarray:
    """Which units emit at `instant`: all of them, or per `lifetime` those in service."""
    if arrival.lifetime is None:
        return np.ones(universe.size, dtype=bool)
    life = arrival.lifetime
    start = universe.columns[life.start].raw
    hours = universe.columns[life.life_hours].raw
    assert start is not None and hours is not None
    initial = universe.columns[life.wear].raw if life.wear else 0.0
    wear = initial + (instant - start) / MS_PER_HOUR / np.maximum(hours, 1e-9)
    return np.asarray((start <= instant) & (wear < 1.0))


class ArrivalPlanner:
    """Plans each entity's rows per batch from the arrival, spawn and baseline settings."""

    def __init__(self, streams: Streams, clock_start: int) -> None:
        self.streams = streams
        self.clock_start = clock_start

    def tick_counts(
        self, name: str, entity: Entity, batch: int, interval: tuple[int, int], units: Frame | None
    ) -> list[tuple[int, int, np.ndarray]]:
        """Per tick: (start, window end, count per unit). One unit when there is no `per`."""
        arrival = entity.arrival
        if arrival is None:
            return []
        rng = self.streams.rng(name, "arrival", batch)
        result = []
        size = units.size if units is not None else 1
        for tick, window_end in ticks(arrival, self.clock_start, interval):
            lam = rate_at(arrival, tick)
            active = active_units(arrival, units, tick) if units is not None else np.ones(1, dtype=bool)
            if arrival.distribution == "poisson":
                counts = rng.poisson(lam * active, size)
            elif arrival.distribution == "fixed":
                counts = np.where(active, round(lam), 0)
            else:
                low, high = arrival.count_range  # type: ignore[misc]
                counts = np.where(active, rng.integers(low, high + 1, size), 0)
            result.append((tick, window_end, np.asarray(counts, dtype=np.int64)))
        return result

    def spawn_counts(self, name: str, entity: Entity, batch: int, parents: int) -> np.ndarray:
        """Children per parent row (`spawn.count` + Poisson(`spawn.extra_lam`))."""
        spawn = entity.spawn
        assert spawn is not None
        counts = np.full(parents, spawn.count, dtype=np.int64)
        if spawn.extra_lam > 0 and parents:
            counts += self.streams.rng(name, "spawn", batch).poisson(spawn.extra_lam, parents)
        return counts

    def count(
        self, name: str, entity: Entity, batch: int, interval: tuple[int, int], units: Frame | None, parents: int
    ) -> int:
        """Rows the entity gets in the batch (cheap: no instants, no values)."""
        total = entity.baseline if batch == 0 else 0
        if entity.spawn is not None:
            total += int(self.spawn_counts(name, entity, batch, parents).sum())
        for _, _, counts in self.tick_counts(name, entity, batch, interval, units):
            total += int(counts.sum())
        return total

    def rows(
        self,
        name: str,
        entity: Entity,
        batch: int,
        interval: tuple[int, int],
        units: Frame | None,
        parent_times: np.ndarray | None,
    ) -> Rows:
        """The batch's rows: baseline (batch 0), spawned children, then each tick's arrivals."""
        start, end = interval
        rng = self.streams.rng(name, "times", batch)
        times: list[np.ndarray] = []
        unit_rows: list[np.ndarray] = []
        parent_rows: list[np.ndarray] = []
        has_units = units is not None
        if batch == 0 and entity.baseline:
            times.append(sorted_instants(rng, entity.baseline, start, end))
            unit_rows.append(np.full(entity.baseline, -1, dtype=np.int64))
            parent_rows.append(np.full(entity.baseline, -1, dtype=np.int64))
        if entity.spawn is not None and parent_times is not None:
            counts = self.spawn_counts(name, entity, batch, parent_times.size)
            parent = np.repeat(np.arange(parent_times.size, dtype=np.int64), counts)
            born = parent_times[parent]
            # A child appears at or after its parent, within the batch.
            times.append(born + (rng.random(parent.size) * np.maximum(end - born, 1)).astype(np.int64))
            unit_rows.append(np.full(parent.size, -1, dtype=np.int64))
            parent_rows.append(parent)
        arrival = entity.arrival
        tick_counts = self.tick_counts(name, entity, batch, interval, units)
        if arrival is not None and arrival.distribution == "fixed":
            if tick_counts:
                unit, at = self._fixed_instants(name, tick_counts)
                times.append(at)
                unit_rows.append(unit if has_units else np.full(at.size, -1, dtype=np.int64))
                parent_rows.append(np.full(at.size, -1, dtype=np.int64))
            tick_counts = []
        for tick, window_end, counts in tick_counts:
            total = int(counts.sum())
            unit = rng.permutation(np.repeat(np.arange(counts.size, dtype=np.int64), counts))
            at = sorted_instants(rng, total, tick, window_end)
            times.append(at)
            unit_rows.append(unit if has_units else np.full(total, -1, dtype=np.int64))
            parent_rows.append(np.full(total, -1, dtype=np.int64))
        if not times:
            # No tick starts in the batch (`every` longer than a live batch): no rows, but
            # samplers still read the (empty) unit and parent columns.
            empty = np.zeros(0, dtype=np.int64)
            return Rows(times=empty, unit=empty if has_units else None, parent=empty if entity.spawn is not None else None)
        all_times = np.concatenate(times)
        unit_all = np.concatenate(unit_rows) if has_units else None
        parent_all = np.concatenate(parent_rows) if entity.spawn is not None else None
        return Rows(times=all_times, unit=unit_all, parent=parent_all)


    def _fixed_instants(self, name: str, tick_counts: list[tuple[int, int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """A set frequency: per tick, each unit reports at its own phase, evenly spaced; the
        rows of all ticks at once, in time order (unit, instant).

        One pass over every tick of the batch (a minute-by-minute family has 60 in an hour):
        a tick's instants lie in [tick, window end) and ticks do not overlap, so one stable
        sort orders them as sorting each tick would.
        """
        counts = np.concatenate([c for _, _, c in tick_counts])  # tick-major, one count per unit
        size = tick_counts[0][2].size
        tick_of = np.repeat(np.repeat(np.arange(len(tick_counts), dtype=np.int64), size), counts)
        unit = np.repeat(np.tile(np.arange(size, dtype=np.int64), len(tick_counts)), counts)
        starts = np.asarray([t for t, _, _ in tick_counts], dtype=np.int64)
        spans = np.asarray([end - t for t, end, _ in tick_counts], dtype=np.int64)
        phase = hash_uniform(unit, self.streams.salt(name, "phase"))
        nth = np.arange(unit.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        per = np.repeat(counts, counts).astype(np.float64)
        at = starts[tick_of] + ((phase + nth) / np.maximum(per, 1) * spans[tick_of]).astype(np.int64)
        order = np.argsort(at, kind="stable")
        return unit[order], at[order]


def sorted_instants(rng: np.random.Generator, count: int, start: int, end: int) -> np.ndarray:
    """`count` uniform instants in [start, end), ascending, in O(count).

    Normalised cumulative exponential spacings are distributed as sorted uniforms, which
    saves sorting a million timestamps per second.
    """
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return kernels.instants_from_spacings(rng.standard_exponential(count + 1), start, end)
