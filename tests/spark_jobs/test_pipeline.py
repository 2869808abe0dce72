"""The whole pipeline on generated driving data: verify holds, and a second run changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import verify
from spark_jobs.config import PipelineConfig
from spark_jobs.gold import GoldCommit, fed_by_silver
from spark_jobs.lifecycle import GracefulStop, InputWatch
from spark_jobs.metrics import MetricsRecorder
from spark_jobs.pipeline import PipelineResult, run, run_once
from spark_jobs.silver import QualityAlerts

pytestmark = pytest.mark.spark


def generate(data: Path, batches: int, seed: int = 11, profile: str = "small") -> None:
    subprocess.run(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", profile,
         "--seed", str(seed), "--data", str(data), "--batches", str(batches), "--quiet"],
        check=True,
    )


def table_versions(spark: SparkSession, data: DataRoot) -> dict[str, int]:
    versions = {}
    for layer_dir in sorted(data.lake.iterdir()):
        if layer_dir.name.startswith("_"):
            continue
        for table in [layer_dir, *sorted(layer_dir.iterdir())]:
            if (table / "_delta_log").is_dir():
                versions[str(table.relative_to(data.lake))] = DeltaTable.forPath(spark, str(table)).history(1).first()["version"]
    return versions


@pytest.fixture(scope="module")
def processed(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, dict[str, int]]:
    data = DataRoot(tmp_path_factory.mktemp("pipeline"))
    generate(data.root, batches=3)
    cfg = PipelineConfig(scenario=load_scenario("driving", profile="small"), data=data)
    run(spark, cfg, GracefulStop())
    return cfg, table_versions(spark, data)


def test_verify_holds_after_one_run(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    cfg, _ = processed
    failed = [c for c in verify(spark, cfg.scenario, cfg.data) if not c.ok]
    assert failed == []


def test_metrics_keep_every_micro_batch_of_a_once_run(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    """The last query's progress reaches the listener after the query ended: the final flush
    waits for it, so `_metrics` holds one row per micro-batch of every query that ran."""
    cfg, _ = processed
    metrics = spark.read.format("delta").load(cfg.metrics_table)
    queries = {row["query"] for row in metrics.select("query").distinct().collect()}
    entities = set(cfg.scenario.entities)
    assert queries == {f"{layer}_{name}" for layer in ("bronze", "silver") for name in entities}
    # Silver read every bronze row once (a micro-batch's input rows, summed).
    bronze_rows = sum(spark.read.format("delta").load(cfg.table("bronze", n)).count() for n in entities)
    read = metrics.where("query LIKE 'bronze_%'").agg({"num_input_rows": "sum"}).first()[0]
    assert read == bronze_rows


def test_quality_counts_per_rule_match_the_quarantined_rows(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    """Each quarantine rule's failures = the quarantined rows that list it; rules on parsed lines
    check every line but the malformed ones; expectations check exactly the lines that broke no
    schema rule (computed here from quarantine's `_reasons`, not by the job's own counts)."""
    from pyspark.sql import functions as F

    from spark_jobs.rules import QUARANTINE, rules_for

    cfg, _ = processed
    quality = spark.read.format("delta").load(cfg.quality_table)
    quarantined = 0
    for name, entity in cfg.scenario.entities.items():
        rules = rules_for(entity)
        schema_rules = [r.name for r in rules if r.schema_derived]
        assert all(r.action == QUARANTINE for r in rules if r.schema_derived)
        quarantine = spark.read.format("delta").load(cfg.table("quarantine", name))
        sums = {row["rule"]: row for row in quality.where(F.col("entity") == name).groupBy("rule").agg(
            F.sum("checked").alias("checked"), F.sum("failed").alias("failed"), F.sum("bronze_rows").alias("bronze")).collect()}
        lines = sums["_batch"]["bronze"]
        malformed = quarantine.where(F.array_contains("_reasons", "malformed_json")).count()
        schema_broken = quarantine.where(F.arrays_overlap("_reasons", F.array(*map(F.lit, schema_rules)))).count()
        assert schema_broken < lines, name
        quarantined += schema_broken
        for rule in rules:
            counted = sums[rule.name]
            if rule.action == QUARANTINE:
                listed = quarantine.where(F.array_contains("_reasons", rule.name)).count()
                assert counted["failed"] == listed, (name, rule.name)
            expected_checked = lines if rule.kind == "malformed_json" else lines - malformed if rule.schema_derived else lines - schema_broken
            assert counted["checked"] == expected_checked, (name, rule.name)
    assert quarantined > 0  # the generator's defects reached quarantine: the counts above were exercised


def test_silver_and_quarantine_keep_statistics_only_where_reads_filter(processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    """The data files' min/max statistics (in the Delta log) cover the key, time fields and
    lineage only, not the raw line or every measure."""
    import json

    cfg, _ = processed
    entity = cfg.scenario.entities["driver_events"]
    allowed = {"silver": {entity.key, "event_time", "_batch_id"}, "quarantine": {"_key", "_source_file", "_batch_id", "_ingested_at"}}
    for layer, columns in allowed.items():
        log = Path(cfg.table(layer, "driver_events")) / "_delta_log"
        stats = [json.loads(action["add"]["stats"]) for commit in sorted(log.glob("*.json"))
                 for action in map(json.loads, commit.read_text().splitlines()) if "add" in action]
        assert stats, layer
        assert all(set(s["minValues"]) <= columns and s["numRecords"] > 0 for s in stats), (layer, stats[0])
        assert any(set(s["minValues"]) == columns for s in stats), (layer, stats[0])


def test_second_run_is_a_no_op(spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]]) -> None:
    cfg, before = processed
    run(spark, cfg, GracefulStop())
    after = table_versions(spark, cfg.data)
    assert {k: v for k, v in after.items() if k != "_metrics"} == {k: v for k, v in before.items() if k != "_metrics"}


class StartedQueries(StreamingQueryListener):
    """Names of the streaming queries started (called synchronously by `start()`)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def onQueryStarted(self, event: Any) -> None:
        self.names.append(event.name)

    def onQueryProgress(self, event: Any) -> None:
        pass

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        pass


def test_continuous_passes_pick_up_new_batches_and_skip_unchanged_inputs(spark: SparkSession, tmp_path: Path) -> None:
    data = DataRoot(tmp_path)
    generate(data.root, batches=2)
    cfg = PipelineConfig(scenario=load_scenario("driving", profile="small"), data=data, once=False)
    watch, started = InputWatch(), StartedQueries()
    commits: list[GoldCommit] = []

    def one_pass() -> list[str]:
        """What one `--continuous` cycle does (pipeline.run_cycles calls run_once)."""
        started.names.clear()
        commits.clear()
        run_once(spark, cfg, MetricsRecorder(), QualityAlerts(0.0), GracefulStop(), PipelineResult(), watch,
                 on_gold_commit=commits.append)
        return sorted(started.names)

    def highest_merged() -> dict[str, int]:
        """The highest landing batch each gold table reported merged in the last pass."""
        highest: dict[str, int] = {}
        for commit in commits:
            highest[commit.table] = max(highest.get(commit.table, -1), commit.highest_batch)
        return highest

    def queries(entities: set[str]) -> list[str]:
        # Silver's micro-batches update the gold tables they feed: no gold query of their own.
        fused = fed_by_silver(cfg.scenario)
        assert fused, "the driving scenario's gold tables are all fed by silver"
        gold = [f"gold_{g.name}" for g in cfg.scenario.gold if g.source in entities and g not in fused]
        return sorted([f"bronze_{e}" for e in entities] + [f"silver_{e}" for e in entities] + gold)

    spark.streams.addListener(started)
    try:
        assert one_pass() == queries(set(cfg.scenario.entities))
        assert highest_merged() == {g.name: 1 for g in cfg.scenario.gold}
        assert one_pass() == []  # nothing landed: no query starts
        assert commits == []
        generate(data.root, batches=4)  # resumes after batch 1: batches 2 and 3 land
        landed = {path.parent.name for batch in (2, 3) for path in data.landing.glob(f"*/*-b{batch:06d}-*.jsonl")}
        assert landed < set(cfg.scenario.entities)  # the dimensions' cadence is hourly
        assert one_pass() == queries(landed)
        assert highest_merged() == {g.name: 3 for g in cfg.scenario.gold if g.source in landed}
    finally:
        spark.streams.removeListener(started)
    failed = [c for c in verify(spark, cfg.scenario, data) if not c.ok]
    assert failed == []
    batches = {r[0] for r in spark.read.format("delta").load(cfg.table("silver", "driver_events")).select("_batch_id").distinct().collect()}
    assert batches == {0, 1, 2, 3}


def test_three_layer_floor_reads_every_line_and_writes_gold_s_columns(
    spark: SparkSession, processed: tuple[PipelineConfig, dict[str, int]], tmp_path: Path
) -> None:
    """The bench's floor does the three layers' irreducible work on the same files."""
    from spark_jobs.bench import skeleton_seconds

    cfg, _ = processed
    total, seconds = skeleton_seconds(spark, cfg.data, tmp_path, profile="small")
    assert list(seconds) == ["bronze", "silver", "gold"] and all(s > 0 for s in seconds.values())
    assert total == sum(seconds.values())
    for name in cfg.scenario.entities:
        lines = sum(1 for path in cfg.data.landing_dir(name).glob("*.jsonl") for _ in path.open("rb"))
        for layer in ("bronze", "silver"):
            assert spark.read.format("delta").load(str(tmp_path / layer / name)).count() == lines, (layer, name)
    for table in cfg.scenario.gold:
        floor = spark.read.format("delta").load(str(tmp_path / "gold" / table.name))
        ours = spark.read.format("delta").load(str(cfg.table("gold", table.name)))
        assert floor.columns == ours.columns and floor.count() > 0
