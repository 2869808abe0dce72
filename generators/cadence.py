"""How a run is paced and what each batch holds, for `/api/health` (`generation_mode` and
`emulated_config`).

A run at `speed` 0 writes as fast as it can (`fast`), at 1 in real time (`real_time`); any
other speed compresses or stretches simulated time (`emulated`: e.g. a 15-minute batch every
5 real seconds). For an emulated run the answer says what each batch holds: per entity its
baseline, the rows it spawns per parent row and its arrival, with the rows per batch where the
scenario fixes them (a set count, or a uniform range, not spread per unit).
"""

from __future__ import annotations

from typing import Any, Literal

from medallion.contracts.scenario import Entity, Scenario

GenerationMode = Literal["fast", "real_time", "emulated"]


def generation_mode(speed: float) -> GenerationMode:
    """fast (speed 0), real_time (1) or emulated (any other pace)."""
    if speed <= 0:
        return "fast"
    return "real_time" if speed == 1 else "emulated"


def emulated_config(scenario: Scenario, speed: float, entities: list[str]) -> dict[str, Any] | None:
    """What an emulated run writes per real interval; None unless the mode is emulated."""
    if generation_mode(speed) != "emulated":
        return None
    interval = scenario.clock.interval.total_seconds()
    return {
        "batch_interval_seconds": round(interval / speed, 6),
        "simulated_interval_seconds": interval,
        "speed": speed,
        "entities": {name: _entity_batch(scenario.entities[name], interval, speed) for name in entities},
    }


def _entity_batch(entity: Entity, interval: float, speed: float) -> dict[str, Any]:
    arrival = entity.arrival
    described: dict[str, Any] = {"baseline": entity.baseline}
    if entity.spawn is not None:
        described["spawn"] = {"parent": entity.spawn.parent, "count": entity.spawn.count}
    if arrival is None:
        return described
    every = arrival.every.total_seconds()
    ticks = max(int(interval // every), 1) if every <= interval else None
    described["arrival"] = {
        "distribution": arrival.distribution,
        "per": arrival.per,
        "rate": arrival.rate if arrival.distribution != "uniform" else None,
        "count_range": list(arrival.count_range) if arrival.count_range else None,
        "every_seconds": every,
        "real_seconds_between_arrivals": round(every / speed, 6),
    }
    # Rows per batch, where the scenario fixes them: one unit (no `per`), no load shape.
    if ticks is None or arrival.per is not None or arrival.hour_of_day or arrival.day_of_week:
        return described
    if arrival.distribution == "fixed":
        count = round(arrival.rate) * ticks
        described["rows_per_batch_range"] = [count, count]
    elif arrival.distribution == "uniform" and arrival.count_range is not None:
        low, high = arrival.count_range
        described["rows_per_batch_range"] = [low * ticks, high * ticks]
    return described
