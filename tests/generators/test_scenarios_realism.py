"""The realism docs/design.md §3.7 describes, measured on generated clean rows."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.generator import audit, generate, load, scenario_variant


def clean_rows(data: Path, name: str, profile: str | None, entity: str, start: str | None = None) -> list[dict[str, Any]]:
    """The clean rows of one entity, read back through the independent audit."""
    return list(audit(data, load(name if not name.endswith(".yaml") else Path(name), profile, start)).clean_rows[entity].values())


def _mean(rows: list[dict[str, Any]], field: str, where: Any = None) -> float:
    values = [r[field] for r in rows if r.get(field) is not None and (where is None or where(r))]
    assert values, f"no {field} values"
    return float(np.mean(values))


@pytest.mark.parametrize("profile", ["realistic", "random"])
def test_traffic_slows_in_rush_hour_only_in_the_realistic_variant(tmp_path: Path, profile: str) -> None:
    means = {}
    counts = {}
    for label, start in (("rush", "2026-01-06T08:00:00Z"), ("night", "2026-01-06T02:00:00Z")):
        data = tmp_path / label
        generate(data, "traffic", 5, 1, profile, "--start", start)
        rows = clean_rows(data, "traffic", profile, "readings", start)
        means[label] = _mean(rows, "speed_kmh")
        counts[label] = _mean(rows, "vehicle_count")
    if profile == "realistic":
        assert means["rush"] < 0.6 * means["night"]
        assert counts["rush"] > 5 * counts["night"]
    else:
        assert abs(means["rush"] - means["night"]) < 0.1 * means["night"]
        assert abs(counts["rush"] - counts["night"]) < 0.15 * counts["night"]


def test_traffic_sensors_sit_on_segments_and_report_three_to_five_times_a_cycle(tmp_path: Path) -> None:
    def no_defects(raw: dict[str, Any]) -> None:
        for entity in raw["entities"].values():
            entity["defects"] = {}

    path = scenario_variant(tmp_path, "traffic", no_defects)
    generate(tmp_path / "run", path, 6, 1)
    found = audit(tmp_path / "run", load(path))
    sensors = found.clean_rows["sensors"]
    per_cycle: dict[tuple[str, str], int] = defaultdict(int)
    for reading in found.clean_rows["readings"].values():
        per_cycle[(reading["sensor_id"], reading["measured_at"][:16])] += 1
        assert sensors[reading["sensor_id"]]["segment_id"] == reading["segment_id"]
    counts = np.array(list(per_cycle.values()))
    assert set(np.unique(counts)) == {3, 4, 5}
    assert len(per_cycle) == len(sensors) * 5  # every sensor in every one-minute cycle of the batch
    assert abs(counts.mean() - 4) < 0.05


def test_retail_keys_are_uuid4_and_line_items_follow_their_transaction(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 9, 4)
    found = audit(tmp_path, load("retail"))
    transactions = found.clean_rows["transactions"]
    items = found.clean_rows["line_items"]
    for key in list(found.clean_rows["users"]) + list(transactions) + list(items):
        assert uuid.UUID(key).version == 4
    per_transaction: dict[str, int] = defaultdict(int)
    for item in items.values():
        parent = transactions[item["transaction_id"]]
        assert item["user_id"] == parent["user_id"]
        assert item["created_at"] == parent["created_at"] or item["created_at"] is not None
        per_transaction[item["transaction_id"]] += 1
    # 1 + Poisson(1.6) items per transaction (a few items are defective, so a bit fewer).
    assert 2.4 < np.mean(list(per_transaction.values())) < 2.8


def _infra_batch(tmp_path: Path, label: str, start: str) -> list[dict[str, Any]]:
    data = tmp_path / label
    generate(data, "infra", 8, 1, "small", "--start", start)
    return clean_rows(data, "infra", "small", "metrics", start)


def test_infra_load_shapes_follow_their_workload(tmp_path: Path) -> None:
    night = _infra_batch(tmp_path, "night", "2026-01-07T02:00:00Z")  # a Wednesday
    office = _infra_batch(tmp_path, "office", "2026-01-07T10:00:00Z")
    saturday = _infra_batch(tmp_path, "saturday", "2026-01-10T19:00:00Z")
    wednesday_evening = _infra_batch(tmp_path, "evening", "2026-01-07T19:00:00Z")

    def cpu(rows: list[dict[str, Any]], workload: str) -> float:
        return _mean(rows, "cpu_pct", lambda r: r["workload"] == workload)

    assert cpu(office, "business_hours") > 3 * cpu(night, "business_hours")
    assert cpu(night, "off_hours_batch") > 3 * cpu(office, "off_hours_batch")
    assert cpu(office, "market_hours") > 3 * cpu(night, "market_hours")
    assert cpu(saturday, "weekend") > 1.3 * cpu(wednesday_evening, "weekend")


def test_infra_cpu_drives_latency_and_errors(tmp_path: Path) -> None:
    rows = _infra_batch(tmp_path, "office", "2026-01-07T10:00:00Z") + _infra_batch(tmp_path, "night", "2026-01-07T02:00:00Z")
    cpu = np.array([r["cpu_pct"] for r in rows])
    latency = np.array([r["latency_ms"] for r in rows])
    errors = np.array([r["error_rate"] for r in rows])
    assert np.corrcoef(cpu, latency)[0, 1] > 0.8
    assert errors[cpu > 75].mean() > 10 * errors[cpu < 40].mean()


def test_infra_backfill_is_written_at_once_then_live(tmp_path: Path) -> None:
    # clock.speed is 1 (real time) but the first 90 days are backfill: 30 batches are immediate.
    started = datetime.now()
    generate(tmp_path, "infra", 8, 30, "small")
    assert (datetime.now() - started).total_seconds() < 20
    assert len(list((tmp_path / "manifests/metrics").glob("b*.json"))) == 30


# Wear and sensor faults, not fleet size or reading rate, are under test: 8 engines reading
# once a minute (the development profile has 3 at 2 Hz) give enough engines for the medians
# and counts below in a few simulated hours, at a 120th of the rows to audit.
SENSOR_FLEET = ("entities.engines.baseline=8", "entities.readings.arrival.rate=1")
SENSOR_FLEET_OPTIONS = tuple(f"--set={setting}" for setting in SENSOR_FLEET)


def test_turbofan_sensors_degrade_toward_failure_and_failed_engines_fall_silent(tmp_path: Path) -> None:
    generate(tmp_path, "turbofan", 3, 48, "development", *SENSOR_FLEET_OPTIONS)
    found = audit(tmp_path, load("turbofan", "development", settings=SENSOR_FLEET))
    readings = found.clean_rows["readings"].values()
    by_engine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in readings:
        by_engine[row["engine_id"]].append(row)
    correlations = []
    for rows in by_engine.values():
        rows.sort(key=lambda r: r["recorded_at"])
        rul = np.array([r["rul_hours"] for r in rows])
        if len(rows) > 30:
            vibration = np.array([r["vibration_mm_s"] for r in rows])
            t50 = np.array([r["t50_lpt_outlet_k"] for r in rows])
            correlations.append((np.corrcoef(rul, t50)[0, 1], np.corrcoef(rul, vibration)[0, 1]))
        assert (rul >= 0).all()
        # Remaining life falls by one hour per hour in service.
        hours = np.array([datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")).timestamp() / 3600 for r in rows])
        if len(rows) > 2:
            slope = np.polyfit(hours, rul, 1)[0]
            assert -1.05 < slope < -0.95
    assert len(correlations) >= 5
    assert np.median([c[0] for c in correlations]) < -0.3  # hotter LPT outlet as life runs out
    assert np.median([c[1] for c in correlations]) < -0.3  # more vibration
    # Engines that reach failure stop reporting: the last RUL seen is within one reading interval.
    engines = found.clean_rows["engines"]
    failed = [e for e, rows in by_engine.items() if min(r["rul_hours"] for r in rows) < 0.5]
    assert failed, "no engine failed in 12 simulated hours of the development profile"
    last_time = max(r["recorded_at"] for r in readings)
    for engine in failed:
        assert max(r["recorded_at"] for r in by_engine[engine]) < last_time
        assert engines[engine]["life_hours"] > 0


def test_turbofan_sensor_faults_show_up(tmp_path: Path) -> None:
    def noisy(raw: dict[str, Any]) -> None:
        sensor = raw["entities"]["readings"]["fields"]["t24_lpc_outlet_k"]["sample"]
        sensor.update({"stuck_share": 0.5, "spike_share": 0.05, "spike_size": 20})

    path = scenario_variant(tmp_path, "turbofan", noisy)
    generate(tmp_path / "run", path, 3, 3, "development", *SENSOR_FLEET_OPTIONS)
    found = audit(tmp_path / "run", load(path, "development", settings=SENSOR_FLEET))
    by_engine: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for row in found.clean_rows["readings"].values():
        if row.get("t24_lpc_outlet_k") is not None:
            by_engine[row["engine_id"]].append((row["recorded_at"], row["t24_lpc_outlet_k"]))
    stuck_engines = 0
    spikes = 0
    for series in by_engine.values():
        values = np.array([v for _, v in sorted(series)])
        spiked = np.abs(values - np.median(values)) > 10
        calm = values[~spiked]  # a spike lands on a frozen sensor too
        if len(calm) > 5 and (calm == calm[0]).all():
            stuck_engines += 1
        spikes += int(spiked.sum())
    assert stuck_engines >= 1  # about half the engine-days are frozen
    assert spikes >= 5


def test_infra_topology_is_zipf_skewed_over_services(tmp_path: Path) -> None:
    generate(tmp_path, "infra", 12, 1)
    found = audit(tmp_path, load("infra"))
    services = found.clean_rows["services"]
    per_service = Counter(c["service_id"] for c in found.clean_rows["components"].values())
    assert set(per_service) <= set(services)
    ranked = [count for _, count in per_service.most_common()]
    # zipf(1.3) over 24 services: the first few services run most components.
    assert sum(ranked[:3]) > 0.45 * sum(ranked)
    assert per_service.most_common(1)[0][0] == "svc-001"


def test_retail_products_follow_their_zipf_skew(tmp_path: Path) -> None:
    generate(tmp_path, "retail", 13, 6)
    items = audit(tmp_path, load("retail")).clean_rows["line_items"].values()
    shipped = Path(__file__).resolve().parents[2] / "generators" / "vocabularies" / "products.txt"
    words = [w for w in shipped.read_text().splitlines() if w and not w.startswith("#")]
    counts = Counter(item["product"] for item in items)
    total = sum(counts.values())
    # P(rank k) ~ 1/k**1.1: the first product is about 2**1.1 = 2.1 times as frequent as the second.
    assert counts[words[0]] > 1.5 * counts[words[1]] > 0
    assert counts[words[0]] / total > 0.1
