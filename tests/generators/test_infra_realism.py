"""The infra scenario's AWS estate, measured on generated clean rows: the resource and service
dependency graphs, hourly costs per resource type, market hours, maintenance windows, and the
1-minute live batches after the backfill."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generators.checks import check_scenario
from medallion.contracts.errors import ConfigError
from medallion.contracts.sampler_specs import ShapedSample
from medallion.contracts.scenario import Clock
from medallion.contracts.scenario_loader import load_scenario
from tests.support.generator import audit, generate, load, scenario_variant

RESOURCES = ("vpcs", "ec2_instances", "eks_clusters", "rds_instances", "load_balancers")


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """Clean rows of every entity: the full-size estate, first hour."""
    data = tmp_path_factory.mktemp("estate")
    generate(data, "infra", 21, 1)
    found = audit(data, load("infra"))
    assert found.orphans_in_clean == 0
    return found.clean_rows


def _hour(row: dict[str, Any]) -> int:
    return int(row["observed_at"][11:13])


def _cpu(rows: list[dict[str, Any]], hours: range, workload: str | None = None) -> float:
    values = [r["cpu_pct"] for r in rows if _hour(r) in hours and (workload is None or r["workload"] == workload)]
    assert values, f"no {workload} rows in {hours}"
    return float(np.mean(values))


def _hours_from(data: Path, start: str, batches: int) -> dict[str, list[dict[str, Any]]]:
    """Clean rows of every entity over `batches` hours from `start`."""
    generate(data, "infra", 8, batches, "small", "--start", start)
    return {name: list(rows.values()) for name, rows in audit(data, load("infra", "small", start)).clean_rows.items()}


@pytest.fixture(scope="module")
def weekend(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Saturday and Sunday, 02:00-07:00 UTC: the same load shapes, but Sunday holds the windows."""
    root = tmp_path_factory.mktemp("weekend")
    return {
        "saturday": _hours_from(root / "sat", "2026-01-10T02:00:00Z", 5),
        "sunday": _hours_from(root / "sun", "2026-01-11T02:00:00Z", 5),
    }


def test_resource_graph_is_referentially_complete(estate: dict[str, dict[str, dict[str, Any]]]) -> None:
    vpcs, subnets, clusters = estate["vpcs"], estate["subnets"], estate["eks_clusters"]
    assert len(vpcs) >= 6 and len(subnets) >= 2 * len(vpcs) and len(clusters) >= 4
    for subnet in subnets.values():
        assert subnet["region"] == vpcs[subnet["vpc_id"]]["region"]  # a subnet lives in its VPC's region
    for entity in ("ec2_instances", "eks_clusters", "rds_instances", "load_balancers"):
        assert estate[entity], entity
        assert all(row["subnet_id"] in subnets for row in estate[entity].values()), entity
    assert all(lb["cluster_id"] in clusters for lb in estate["load_balancers"].values())
    assert all(c["cluster_id"] in clusters for c in estate["components"].values())
    # Each metric family points at the resources it measures.
    for family, key, unit in (
        ("compute_metrics", "instance_id", "ec2_instances"),
        ("database_metrics", "db_id", "rds_instances"),
        ("network_metrics", "lb_id", "load_balancers"),
        ("cost_records", "component_id", "components"),
        ("security_events", "service_id", "services"),
    ):
        rows = estate[family].values()
        assert rows, family
        assert {r[key] for r in rows} <= set(estate[unit]), family


def test_service_dependency_graph_is_acyclic_and_complete(estate: dict[str, dict[str, dict[str, Any]]]) -> None:
    services = estate["services"]
    edges = [(d["service_id"], d["depends_on"]) for d in estate["service_dependencies"].values()]
    assert len(edges) >= 25
    assert all(a in services and b in services and a != b for a, b in edges)
    # Kahn's algorithm consumes every node only if there is no cycle.
    calls: dict[str, set[str]] = defaultdict(set)
    for caller, callee in edges:
        calls[caller].add(callee)
    indegree = {s: 0 for s in services}
    for callees in calls.values():
        for callee in callees:
            indegree[callee] += 1
    ready = [s for s, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for callee in calls[node]:
            indegree[callee] -= 1
            if indegree[callee] == 0:
                ready.append(callee)
    assert seen == len(services)
    # Core (oldest) services are the ones most others call.
    called = [callee for _, callee in edges]
    first_four = {f"svc-{i:03d}" for i in range(1, 5)}
    assert sum(c in first_four for c in called) > 0.4 * len(called)


# Plausible on-demand hourly costs (USD) per resource type: the cheapest to the dearest
# configuration the scenario declares, and a monthly bill within what such a resource costs.
COST_BOUNDS = {
    "vpcs": (0.045, 0.2),  # 1-3 NAT gateways
    "ec2_instances": (0.19, 3.3),  # m5.xlarge Linux to r5.4xlarge with SQL Server Enterprise
    "eks_clusters": (2.9, 38.0),  # control plane + 15-75 nodes
    "rds_instances": (0.17, 2.0),  # db.m5.large to Oracle on db.r5.2xlarge
    "load_balancers": (0.028, 0.19),  # hourly fee + 1-20 capacity units
}


@pytest.mark.parametrize("entity", RESOURCES)
def test_hourly_cost_per_resource_type_is_positive_and_plausible(estate: dict[str, dict[str, dict[str, Any]]], entity: str) -> None:
    low, high = COST_BOUNDS[entity]
    costs = np.array([r["hourly_cost_usd"] for r in estate[entity].values()])
    assert costs.size and (costs > 0).all()
    assert low <= costs.min() and costs.max() <= high, (entity, costs.min(), costs.max())


def test_costs_follow_size_and_licence(estate: dict[str, dict[str, dict[str, Any]]]) -> None:
    clusters = list(estate["eks_clusters"].values())
    per_node = np.array([(c["hourly_cost_usd"] - 0.10) / c["node_count"] for c in clusters])
    assert ((per_node > 0.19) & (per_node < 0.51)).all()  # a node's hourly price
    ec2 = list(estate["ec2_instances"].values())
    sql = [r["hourly_cost_usd"] for r in ec2 if r["platform"] == "sqlserver_enterprise"]
    linux = [r["hourly_cost_usd"] for r in ec2 if r["platform"] == "linux"]
    assert sql and linux and min(sql) > max(linux)  # the licence dominates
    lines = list(estate["cost_records"].values())
    per_core = np.array([r["cost_usd"] / r["cores"] for r in lines])
    assert (per_core > 0.03).all() and (per_core < 0.15).all()
    assert 35 < np.mean([r["utilization_pct"] for r in lines]) < 85


def test_market_hours_run_from_six_to_sixteen(tmp_path: Path) -> None:
    # A Wednesday from 05:00 to 17:00: the hour before the open, the opening hour, the last
    # hour and the one after the close.
    rows = _hours_from(tmp_path, "2026-01-07T05:00:00Z", 12)["compute_metrics"]
    market = {h: _cpu(rows, range(h, h + 1), "market_hours") for h in (5, 6, 15, 16)}
    assert market[6] > 3 * market[5]
    assert market[15] > 3 * market[16]
    # Trading is busy all session long, and at the open busier than office systems.
    assert _cpu(rows, range(6, 16), "market_hours") > 3 * _cpu(rows, range(16, 17), "market_hours")
    assert market[6] > 2 * _cpu(rows, range(6, 7), "business_hours")


@pytest.mark.parametrize(
    ("entity", "window"),
    [("metrics", range(2, 5)), ("compute_metrics", range(2, 5)), ("network_metrics", range(2, 5)), ("database_metrics", range(3, 5))],
)
def test_maintenance_windows_show_in_the_metrics(
    weekend: dict[str, dict[str, list[dict[str, Any]]]], entity: str, window: range
) -> None:
    saturday, sunday = weekend["saturday"][entity], weekend["sunday"][entity]
    field = "requests_per_s" if entity == "network_metrics" else "cpu_pct"

    def mean(rows: list[dict[str, Any]], hours: range) -> float:
        values = [r[field] for r in rows if _hour(r) in hours]
        assert values, f"no {entity} rows in {hours}"
        return float(np.mean(values))

    assert mean(sunday, window) < 0.6 * mean(saturday, window)
    # Once the window closes, Sunday is Saturday again.
    assert 0.75 < mean(sunday, range(6, 7)) / mean(saturday, range(6, 7)) < 1.33


def test_backfill_is_hourly_then_live_batches_are_one_minute(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["clock"]["backfill"] = "3h"  # three backfill batches instead of 2,160

    variant = scenario_variant(tmp_path, "infra", edit)
    started = time.monotonic()
    # speed 60: a live minute every real second, after the backfill is written at once.
    generate(tmp_path / "d", variant, 4, 6, "small", "--speed", "60")
    elapsed = time.monotonic() - started
    # Live minutes are paced (batch 5 is due 3 s after the backfill's end); the three backfill
    # hours are not (paced, they would take 180 s).
    assert 2.5 < elapsed < 60
    spans = []
    for batch in range(6):
        manifest = json.loads((tmp_path / f"d/manifests/compute_metrics/b{batch:06d}.json").read_text())
        start, end = (np.datetime64(manifest[k].rstrip("Z")) for k in ("interval_start", "interval_end"))
        spans.append(((end - start) / np.timedelta64(1, "s"), manifest["lines"]))
    assert [s for s, _ in spans] == [3600.0] * 3 + [60.0] * 3
    instances = 12
    assert all(lines >= 55 * instances for _, lines in spans[:3])  # one sample a minute per instance
    assert all(instances - 2 <= lines <= instances + 2 for _, lines in spans[3:])
    run = json.loads((tmp_path / "d/manifests/run.json").read_text())
    assert run["clock"]["live_interval_seconds"] == 60.0


def test_live_interval_and_maintenance_leave_other_configs_unchanged() -> None:
    # Unset, they are not part of the dump, so scenarios without them keep their config hash.
    clock = Clock.model_validate({"start": "2026-01-05T00:00:00Z", "interval": "15m"})
    assert "live_interval" not in clock.model_dump(mode="json")
    assert clock.batch_interval_ms(3)[0] - clock.batch_interval_ms(2)[0] == 900_000
    shaped = ShapedSample.model_validate({"kind": "shaped", "shapes": {"flat": {}}})
    assert "maintenance" not in shaped.model_dump(mode="json")
    assert "maintenance" in ShapedSample.model_validate(
        {"kind": "shaped", "shapes": {"flat": {}}, "maintenance": [{"weekday": 6, "start_hour": 2, "hours": 3, "factor": 0.1}]}
    ).model_dump(mode="json")


def test_misused_upstream_and_priced_samplers_are_named(tmp_path: Path) -> None:
    def edit(raw: dict[str, Any]) -> None:
        raw["entities"]["service_dependencies"]["fields"]["depends_on"]["sample"]["of"] = "protocol"
        raw["entities"]["ec2_instances"]["fields"]["hourly_cost_usd"]["sample"]["prices"]["created_at"] = {"x": 1.0}

    with pytest.raises(ConfigError) as caught:
        check_scenario(load_scenario(scenario_variant(tmp_path, "infra", edit)))
    text = str(caught.value)
    assert "service_dependencies.fields.depends_on.sample.of: 'protocol'" in text
    assert "ec2_instances.fields.hourly_cost_usd.sample.prices: 'created_at'" in text
