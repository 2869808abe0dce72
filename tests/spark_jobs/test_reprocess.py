"""`medallion reprocess`: silver, quarantine, quality and gold rebuilt from bronze, exactly once.

One data root (driving, small preset, 3 batches) goes through the pipeline once; its derived
tables are the reference. Each test then reprocesses that root: with the same rules (same
tables), with a narrowed range (more rows quarantined, gold follows, export re-syncs), and after
an interruption (the pipeline refuses, a second reprocess ends where an uninterrupted one does).
Bronze must come out byte for byte as it went in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.errors import PipelineError, UnsafePathError
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import Connection, run_sql
from medallion.verify import verify
from spark_jobs import export, reprocess
from spark_jobs.config import PipelineConfig, export_config, pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run as run_pipeline
from tests.support.generator import generate, tree_bytes

pytestmark = pytest.mark.spark

# Columns that record when or in which micro-batch a row was written, not what it says.
VOLATILE = {"recorded_at", "micro_batch_id"}
NARROW_SPEED = 60.0  # the changed rule: speed_kmh in [0, 60] instead of [0, 250]
GOLD = "company_activity_15m"


def narrowed(cfg: PipelineConfig) -> PipelineConfig:
    """The same data root under a changed rule (through the loader's overrides)."""
    scenario = load_scenario("driving", profile="small", overrides={
        "entities": {"driver_events": {"fields": {"speed_kmh": {"range": [0, NARROW_SPEED]}}}}})
    return pipeline_config(scenario, cfg.data)


def contents(df: DataFrame) -> list[str]:
    """A table's rows as sorted text, without the columns that legitimately differ per run."""
    return sorted(repr(tuple(row)) for row in df.drop(*[c for c in df.columns if c in VOLATILE]).collect())


def quality_totals(df: DataFrame) -> DataFrame:
    """Quality summed per (entity, landing batch, rule): micro-batch boundaries may differ."""
    numbers = [c for c in df.columns if c in ("checked", "passed", "failed", "bronze_rows", "silver_rows",
                                               "quarantine_rows", "duplicate_rows", "dropped_rows")]
    return df.groupBy("entity", "batch_id", "rule", "kind", "action").agg(*[F.sum(c).alias(c) for c in numbers])


def snapshot(spark: SparkSession, cfg: PipelineConfig) -> dict[str, list[str]]:
    """Every table reprocess rebuilds, by its path under lake/."""
    tables = {}
    for path in reprocess.rebuilt_tables(cfg):
        df = spark.read.format("delta").load(str(path))
        tables[path.relative_to(cfg.data.lake).as_posix()] = contents(quality_totals(df) if path.name == "quality" else df)
    return tables


def bronze_bytes(cfg: PipelineConfig) -> dict[str, bytes]:
    return tree_bytes(cfg.data.lake / "bronze")


@pytest.fixture(scope="module")
def reference(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]]:
    """A data root after one pipeline run: its config, the derived tables, bronze's bytes."""
    data = DataRoot(tmp_path_factory.mktemp("reprocess"))
    generate(data.root, "driving", 11, 3, "small")
    cfg = pipeline_config("driving", data, profile="small")
    run_pipeline(spark, cfg, GracefulStop())
    return cfg, snapshot(spark, cfg), bronze_bytes(cfg)


@pytest.fixture
def cfg(reference: tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]]) -> Iterator[PipelineConfig]:
    """The reference root; each test leaves it without a marker (a reprocess that finished)."""
    yield reference[0]
    assert not os.path.lexists(reference[0].data.reprocess_marker)


def test_unchanged_rules_rebuild_the_same_tables(spark: SparkSession, cfg: PipelineConfig,
                                                 reference: tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]]) -> None:
    _, tables, bronze = reference
    # Gold tables fed by silver have no checkpoint of their own: only what exists is removed.
    present = {p.relative_to(cfg.data.lake).as_posix()
               for p in [*reprocess.rebuilt_tables(cfg), *reprocess.rebuilt_checkpoints(cfg)] if os.path.lexists(p)}
    result = reprocess.run(spark, cfg, GracefulStop())
    assert snapshot(spark, cfg) == tables
    assert bronze_bytes(cfg) == bronze
    assert [c for c in verify(spark, cfg.scenario, cfg.data) if not c.ok] == []
    # Every table and checkpoint of the rebuilt layers was removed, and nothing else.
    assert set(result.removed) == present
    assert {p.relative_to(cfg.data.lake).as_posix() for p in reprocess.rebuilt_tables(cfg)} <= present
    assert result.rows == {name: len(rows) for name, rows in tables.items() if name != "quality"} | {
        "quality": spark.read.format("delta").load(cfg.quality_table).count()}
    assert not cfg.data.reprocess_trash.exists() and result.resumed_from is None


@pytest.mark.integration
def test_a_narrowed_range_moves_rows_to_quarantine_gold_and_the_export_follow(
    spark: SparkSession, cfg: PipelineConfig, export_connections: dict[str, Connection],
    reference: tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]],
) -> None:
    _, tables, bronze = reference
    exporting = export_config(cfg.scenario, cfg.data)
    export.run(spark, exporting, connections=export_connections)
    silver_before = spark.read.format("delta").load(cfg.table("silver", "driver_events")).collect()
    too_fast = {r["event_id"] for r in silver_before if r["speed_kmh"] is not None and r["speed_kmh"] > NARROW_SPEED}
    assert len(too_fast) > 10  # the changed rule has rows to act on

    changed = narrowed(cfg)
    reprocess.run(spark, changed, GracefulStop())

    silver = spark.read.format("delta").load(cfg.table("silver", "driver_events"))
    assert {r["event_id"] for r in silver.collect()} == {r["event_id"] for r in silver_before} - too_fast
    quarantine = spark.read.format("delta").load(cfg.table("quarantine", "driver_events"))
    by_rule = {r["_key"] for r in quarantine.where(F.array_contains("_reasons", "speed_kmh_range")).collect()}
    assert too_fast <= by_rule
    after = snapshot(spark, changed)
    assert after[f"gold/{GOLD}"] != tables[f"gold/{GOLD}"]  # fewer events and slower averages per cell
    assert {k: v for k, v in after.items() if "driver_events" not in k and k not in ("quality", f"gold/{GOLD}")} == {
        k: v for k, v in tables.items() if "driver_events" not in k and k not in ("quality", f"gold/{GOLD}")}
    assert bronze_bytes(cfg) == bronze

    # verify (against the generator's ledger, which knows the old rule) finds exactly the moved
    # rows of driver_events; gold still equals its recomputation from the new silver.
    failed = {(c.subject, c.check) for c in verify(spark, changed.scenario, cfg.data) if not c.ok}
    must = {("driver_events", "silver rows = clean_records"), ("driver_events", "silver keys = clean keys"),
            ("driver_events", "quarantine rows = quarantine-fate defects")}
    assert must <= failed <= must | {("driver_events", "duplicates removed = ledger duplicates")}

    # The rebuilt gold table is a new Delta table: the export falls back to a full sync.
    results = export.export_gold(spark, exporting, export_connections)
    assert {r.mode for r in results} == {"snapshot"}
    gold = spark.read.format("delta").load(cfg.table("gold", GOLD)).agg(F.count("*"), F.sum("events")).first()
    for connection in export_connections.values():
        assert tuple(run_sql(connection, f"SELECT count(*), sum(events) FROM {GOLD}")[0]) == (gold[0], gold[1])


def test_an_interrupted_reprocess_blocks_the_pipeline_until_it_is_run_again(
    spark: SparkSession, cfg: PipelineConfig,
    reference: tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]],
) -> None:
    _, tables, bronze = reference
    # Interrupted mid-deletion: the marker is written, one table is gone, another lies half
    # deleted in the trash, the rest is still in place.
    reprocess.write_marker(cfg)
    shutil.rmtree(cfg.table("silver", "companies"))
    half = cfg.data.reprocess_trash / "silver" / "driver_events"
    half.parent.mkdir(parents=True)
    os.rename(cfg.table("silver", "driver_events"), half)
    shutil.rmtree(half / "_delta_log")

    with pytest.raises(PipelineError, match=r"run `medallion reprocess --scenario driving --profile small --data .*` again"):
        run_pipeline(spark, cfg, GracefulStop())
    command = [sys.executable, "-m", "medallion.cli", "pipeline", "--scenario", "driving", "--profile", "small",
               "--data", str(cfg.data.root)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 5 and "medallion reprocess" in refused.stderr, refused.stderr

    result = reprocess.run(spark, cfg, GracefulStop())
    assert result.resumed_from is not None
    assert snapshot(spark, cfg) == tables
    assert bronze_bytes(cfg) == bronze
    assert not cfg.data.reprocess_trash.exists()
    assert [c for c in verify(spark, cfg.scenario, cfg.data) if not c.ok] == []


def test_only_its_own_folders_are_deleted(spark: SparkSession, cfg: PipelineConfig) -> None:
    """A link, or a folder that is no Delta table, where a rebuilt table belongs is refused
    before the marker is written or anything removed."""
    gold = Path(cfg.table("gold", GOLD))
    stray = gold.with_name("stray")
    os.rename(gold, stray)
    try:
        outside = cfg.data.root / "elsewhere"  # inside the data root: only the link itself is wrong
        outside.mkdir()
        (outside / "keep.txt").write_text("not medallion's")
        os.symlink(outside, gold)
        with pytest.raises(UnsafePathError, match="symbolic link"):
            reprocess.run(spark, cfg, GracefulStop())
        gold.unlink()
        gold.mkdir()
        (gold / "notes.txt").write_text("mine")
        with pytest.raises(UnsafePathError, match="not a Delta table"):
            reprocess.run(spark, cfg, GracefulStop())
        assert (outside / "keep.txt").exists() and (gold / "notes.txt").exists()
        assert not os.path.lexists(cfg.data.reprocess_marker)
        assert Path(cfg.table("silver", "drivers"), "_delta_log").is_dir()
        shutil.rmtree(gold)
        shutil.rmtree(outside)
    finally:
        os.rename(stray, gold)


@pytest.mark.slow
def test_the_command_prints_what_it_rebuilt(cfg: PipelineConfig,
                                            reference: tuple[PipelineConfig, dict[str, list[str]], dict[str, bytes]]) -> None:
    command = [sys.executable, "-m", "medallion.cli", "reprocess", "--scenario", "driving", "--profile", "small",
               "--data", str(cfg.data.root), "--master", "local[2]"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert finished.returncode in (0, 6), finished.stderr[-2000:]  # 6 = a quality alert, as `pipeline --once`
    assert "[reprocess] done in" in finished.stdout
    for name, rows in reference[1].items():
        if name != "quality":
            assert any(line.split() == [name, f"{len(rows):,}", "rows"] for line in finished.stdout.splitlines()), name
