"""The manifest's sensor anomalies (docs/design.md §3.5, "Anomalies"): spikes, stuck sensors and
calibration drift that the degradation sampler (or `POST /api/anomalies`) put on a batch's
readings, as `kind: anomaly` entries (fate keep: the readings are valid data).

Only readings that reach silver are recorded: a row that is never written, or whose line
carries a defect silver quarantines or dedupes, is left out. A stuck day or a drifting unit
that spans batches gets one entry per batch, all with the same `id`; `start` and `end` are the
first and last affected reading of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from generators.samplers import MS_PER_DAY, Column, SensorFaults
from medallion.contracts.defects import ANOMALY_FATE, ANOMALY_KIND, AnomalySubtype


def instant(epoch_ms: int) -> str:
    """An instant as records write timestamps: ISO-8601 UTC with milliseconds and `Z`."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def entry(subtype: AnomalySubtype, anomaly_id: str, engine: str, sensor: str, times: np.ndarray,
          **extra: Any) -> dict[str, Any]:
    """One manifest entry in the contract's key order (None values left out)."""
    out: dict[str, Any] = {
        "kind": ANOMALY_KIND, "subtype": str(subtype), "id": anomaly_id, "engine": engine, "sensor": sensor,
        "start": instant(int(times.min())), "end": instant(int(times.max())), "readings": int(times.size),
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    out["fate"] = str(ANOMALY_FATE)
    return out


def _rounded(value: float) -> float:
    return round(float(value), 9)


def sensor_entries(sensor: str, faults: SensorFaults, column: Column, rows: np.ndarray, times: np.ndarray,
                   units: list[str], unit_ids: np.ndarray, keys: list[str]) -> list[dict[str, Any]]:
    """The entries of one sensor field over the given rows (`rows`: generated row indices that
    reach silver; `units`, `unit_ids`, `keys`, `times` aligned with `rows`)."""
    out: list[dict[str, Any]] = []
    raw = column.raw
    assert raw is not None
    for i in np.flatnonzero(faults.spike[rows]):
        row = int(rows[i])
        out.append(entry(AnomalySubtype.SPIKE, f"spike:{sensor}:{keys[i]}", units[i], sensor, times[i : i + 1],
                         key=keys[i], value=_rounded(raw[row]), magnitude=_rounded(faults.spike_change[row])))
    stuck = np.flatnonzero(faults.stuck[rows])
    if stuck.size:
        days = times[stuck] // MS_PER_DAY
        for unit_id, day in sorted(set(zip(unit_ids[stuck].tolist(), days.tolist(), strict=True))):
            members = stuck[(unit_ids[stuck] == unit_id) & (days == day)]
            plain = [int(rows[m]) for m in members if not faults.spike[rows[m]]]
            value = _rounded(raw[plain[0]]) if plain else None
            unit = units[int(members[0])]
            out.append(entry(AnomalySubtype.STUCK, f"stuck:{sensor}:{unit}:{instant(day * MS_PER_DAY)[:10]}", unit, sensor,
                             times[members], value=value))
    drifting = np.flatnonzero(faults.drift[rows])
    if drifting.size:
        for unit_id in sorted(set(unit_ids[drifting].tolist())):
            members = drifting[unit_ids[drifting] == unit_id]
            last = int(rows[members[np.argmax(times[members])]])
            unit = units[int(members[0])]
            out.append(entry(AnomalySubtype.DRIFT, f"drift:{sensor}:{unit}", unit, sensor, times[members],
                             magnitude=_rounded(faults.drift_offset[last])))
    return out


def sort_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries in a stable order: by start, sensor, engine, subtype, id."""
    return sorted(entries, key=lambda e: (e["start"], e["sensor"], e["engine"], e["subtype"], e["id"]))


@dataclass
class Injection:
    """An anomaly asked for at run time (`POST /api/anomalies`): it starts with the first batch
    generated after the request (`start`, set then) and lasts `duration_ms` of simulated time.
    A spike changes one reading by `magnitude`; a stuck sensor repeats the first reading's value;
    a drift adds up to `magnitude`, growing linearly over the duration. Values stay clipped to
    the field's range (the readings remain valid data)."""

    id: str
    subtype: AnomalySubtype
    entity: str
    sensor: str
    unit: int  # row of the unit entity's universe
    unit_key: str
    duration_ms: int
    magnitude: float
    start: int | None = None
    frozen: float | None = None
    spent: bool = False  # a spike that has hit its reading

    @property
    def end(self) -> float:
        """Simulated end (epoch ms, exclusive); a spike lasts until it has hit one reading."""
        assert self.start is not None
        return float("inf") if self.subtype == AnomalySubtype.SPIKE else float(self.start + self.duration_ms)

    def active(self, interval: tuple[int, int]) -> bool:
        return self.start is not None and not self.spent and self.start < interval[1] and interval[0] < self.end

    def apply(self, values: np.ndarray, times: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Change the values in place; returns the rows it changed."""
        assert self.start is not None
        end = self.end
        rows = np.flatnonzero((units == self.unit) & (times >= self.start) & (times < end))
        if not rows.size:
            return rows
        rows = rows[np.argsort(times[rows], kind="stable")]
        if self.subtype == AnomalySubtype.SPIKE:
            rows = rows[:1]
            values[rows] += self.magnitude
            self.spent = True
        elif self.subtype == AnomalySubtype.STUCK:
            if self.frozen is None:
                self.frozen = float(values[rows[0]])
            values[rows] = self.frozen
        else:
            values[rows] += self.magnitude * (times[rows] - self.start) / max(self.duration_ms, 1)
        return rows

    def entries(self, positions: np.ndarray, times: np.ndarray, values: np.ndarray, keys: list[str]) -> list[dict[str, Any]]:
        """The manifest entry for the readings it changed that reach silver (`positions` into
        the aligned `times`, `values` (as written) and `keys` of those readings)."""
        if not positions.size:
            return []
        extra: dict[str, Any] = {}
        first = int(positions[np.argmin(times[positions])])
        if self.subtype == AnomalySubtype.SPIKE:
            extra.update(key=keys[first], value=_rounded(values[first]), magnitude=_rounded(self.magnitude))
        elif self.subtype == AnomalySubtype.STUCK:
            extra.update(value=_rounded(values[first]))
        else:
            assert self.start is not None
            latest = float(times[positions].max())
            extra.update(magnitude=_rounded(self.magnitude * (latest - self.start) / max(self.duration_ms, 1)))
        extra["source"] = "api"
        return [entry(self.subtype, self.id, self.unit_key, self.sensor, times[positions], **extra)]
