"""Hardening of ingestion: what lands that is not a landing file, lines past the limits, tables
other engines can read, and paths that lead out of the data root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable as RsDeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from medallion.contracts.errors import PipelineError, UnsafePathError
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.verify import verify
from spark_jobs import storage
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run
from spark_jobs.schemas import bronze_schema
from tests.support.generator import scenario_variant
from tests.support.text import is_utf8

pytestmark = pytest.mark.spark

MARKER = "MARKER-FROM-OUTSIDE-THE-DATA-ROOT"
SCENARIO = load_scenario("driving", profile="small")


def driving_with_more_malformed_lines(folder: Path) -> Path:
    """The driving scenario with malformed lines (invalid UTF-8 among them) at 10 %, so a
    small run holds several."""
    def more_malformed(raw: dict[str, Any]) -> None:
        defects = raw["entities"]["driver_events"]["defects"]
        assert defects["malformed_json"] == 0.003
        defects["malformed_json"] = 0.1

    return scenario_variant(folder, "driving", more_malformed, "driving.yaml")


def generate(scenario: Path, data: Path, batches: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", str(scenario), "--profile", "small",
         "--seed", "5", "--data", str(data), "--batches", str(batches), "--quiet"],
        check=True,
    )


def marker_line(tag: str) -> str:
    return json.dumps({"event_id": f"{MARKER}-{tag}", "driver_id": "x"}) + "\n"


@pytest.fixture(scope="module")
def landed_with_odd_entries(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineConfig, Path]:
    """Generated driving data (defects on) plus every kind of entry a landing folder must not
    pass to Spark; then one `--once` run of the whole pipeline."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.jsonl").write_text(marker_line("link"))
    scenario = driving_with_more_malformed_lines(outside)
    data = DataRoot(tmp_path_factory.mktemp("odd"))
    generate(scenario, data.root, batches=2)
    events = data.landing_dir("driver_events")
    os.symlink(outside / "secret.jsonl", events / "driver_events-b000077-p00.jsonl")  # a landing name, out
    os.symlink(data.landing_file("drivers", 1, 0), events / "driver_events-b000078-p00.jsonl")  # a link inside
    (events / "driver_events-2026-01-05T06:00.jsonl").write_text(marker_line("colon"))
    (events / "driver_events-b000001-p00.json").write_text(marker_line("json"))
    (events / "notes.txt").write_text(marker_line("txt"))
    (events / "drivers-b000079-p00.jsonl").write_text(marker_line("other-entity"))
    (events / "driver_events-b000080-p00.jsonl.d").mkdir()
    (events / ".driver_events-b000081-p00.jsonl.tmp").write_text(marker_line("in-flight"))
    cfg = PipelineConfig(scenario=load_scenario(str(scenario), profile="small"), data=data)
    run(spark, cfg, GracefulStop())
    return cfg, outside


def test_odd_landing_entries_are_moved_aside_and_reported_and_the_rest_is_processed(
    spark: SparkSession, landed_with_odd_entries: tuple[PipelineConfig, Path]
) -> None:
    cfg, outside = landed_with_odd_entries
    report = [json.loads(line) for line in (cfg.data.landing / "_rejected" / "rejected.jsonl").read_text().splitlines()]
    reasons = {r["file"]: r["reason"] for r in report}
    assert reasons == {
        "driver_events-b000077-p00.jsonl": "outside_data_root",
        "driver_events-b000078-p00.jsonl": "symlink",
        "driver_events-2026-01-05T06:00.jsonl": "bad_file_name",
        "driver_events-b000001-p00.json": "bad_file_name",
        "notes.txt": "bad_file_name",
        "drivers-b000079-p00.jsonl": "bad_file_name",
        "driver_events-b000080-p00.jsonl.d": "not_a_regular_file",
    }
    aside = cfg.data.landing / "_rejected" / "driver_events"
    assert sorted(p.name for p in aside.iterdir()) == sorted(reasons)
    # Links were moved as links; what they point to is untouched.
    assert (aside / "driver_events-b000077-p00.jsonl").is_symlink()
    assert (outside / "secret.jsonl").read_text() == marker_line("link")
    # A file still being written (a `.` name) is left for its producer.
    assert (cfg.data.landing_dir("driver_events") / ".driver_events-b000081-p00.jsonl.tmp").exists()
    for layer in ("bronze", "quarantine"):
        table = spark.read.format("delta").load(cfg.table(layer, "driver_events"))
        assert table.where(F.col("_line").contains(MARKER)).count() == 0, layer
    assert spark.read.format("delta").load(cfg.table("silver", "driver_events")).count() > 0


def test_verify_holds_with_odd_entries_moved_aside(spark: SparkSession, landed_with_odd_entries: tuple[PipelineConfig, Path]) -> None:
    cfg, _ = landed_with_odd_entries
    failed = [c for c in verify(spark, cfg.scenario, cfg.data) if not c.ok]
    assert failed == []


def test_every_table_is_valid_for_arrow_and_keeps_invalid_utf8_lines_as_their_bytes(
    spark: SparkSession, landed_with_odd_entries: tuple[PipelineConfig, Path]
) -> None:
    cfg, _ = landed_with_odd_entries
    tables = sorted(log.parent for log in cfg.data.lake.rglob("_delta_log") if "_checkpoints" not in log.parts)
    assert len(tables) >= 3 * 3 + 1
    for path in tables:
        RsDeltaTable(str(path)).to_pyarrow_table().validate(full=True)  # raises on invalid UTF-8 in strings
    landed = {line.rstrip(b"\n") for file in cfg.data.landing_dir("driver_events").glob("*.jsonl") for line in file.open("rb")}
    invalid = {line for line in landed if not is_utf8(line)}
    assert invalid, "the driving scenario writes invalid UTF-8 lines on purpose"
    for layer in ("bronze", "quarantine"):
        arrow = RsDeltaTable(cfg.table(layer, "driver_events")).to_pyarrow_table(columns=["_raw", "_line"])
        assert arrow.schema.field("_raw").type in (pa.binary(), pa.large_binary())
        rows = arrow.to_pylist()
        kept = {r["_raw"] for r in rows if r["_line"] is None}
        assert kept == invalid, layer
        assert all(r["_line"].encode() == r["_raw"] for r in rows if r["_line"] is not None), layer


def test_a_long_line_and_a_2000_deep_object_get_their_own_reasons(spark: SparkSession, tmp_path: Path) -> None:
    data = DataRoot(tmp_path)
    valid = {"company_id": "c-1", "name": "Acme", "city": "Delft", "onboarded_at": "2026-01-01T00:00:00Z"}
    huge = json.dumps({**valid, "company_id": "c-huge", "name": "x" * (3 << 20)})  # past the 1 MiB default
    deep = '{"company_id":"c-deep","name":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}"
    folder = data.landing_dir("companies")
    folder.mkdir(parents=True)
    (folder / "companies-b000001-p00.jsonl").write_text("\n".join([json.dumps(valid), huge, deep]) + "\n")
    cfg = PipelineConfig(scenario=SCENARIO, data=data, layers=("bronze", "silver"))
    run(spark, cfg, GracefulStop())
    bronze = spark.read.format("delta").load(cfg.table("bronze", "companies"))
    assert sorted(r[0] for r in bronze.select(F.octet_length("_raw")).collect()) == sorted(
        [len(json.dumps(valid)), len(huge), len(deep)]
    )
    quarantine = spark.read.format("delta").load(cfg.table("quarantine", "companies"))
    reasons = {r["_key"]: (r["_reasons"], r["_kinds"]) for r in quarantine.select("_key", "_reasons", "_kinds").collect()}
    assert reasons == {"c-huge": (["line_too_long"], ["malformed_json"]), "c-deep": (["too_deep"], ["malformed_json"])}
    assert [r[0] for r in spark.read.format("delta").load(cfg.table("silver", "companies")).select("company_id").collect()] == ["c-1"]


@pytest.mark.parametrize("linked", ["landing", "landing/driver_events", "lake", "lake/bronze/drivers", "lake/_checkpoints"])
def test_a_folder_linked_out_of_the_data_root_is_refused_before_any_query(
    spark: SparkSession, tmp_path: Path, linked: str
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "driver_events-b000001-p00.jsonl").write_text(marker_line("folder"))
    link = root / linked
    link.parent.mkdir(parents=True)
    link.symlink_to(outside, target_is_directory=True)
    cfg = PipelineConfig(scenario=SCENARIO, data=DataRoot(root))
    with pytest.raises(UnsafePathError, match="leads out of the data root"):
        run(spark, cfg, GracefulStop())
    assert sorted(p.name for p in outside.iterdir()) == ["driver_events-b000001-p00.jsonl"]
    assert not (root / "lake" / "bronze").exists() or linked.startswith("lake")


def test_an_unborn_delta_log_is_removed_only_when_it_holds_what_delta_leaves(spark: SparkSession, tmp_path: Path) -> None:
    schema = StructType([StructField("id", StringType())])
    foreign = tmp_path / "t" / "_delta_log"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="won't remove it"):
        storage.ensure_table(spark, str(tmp_path / "t"), schema)
    assert (foreign / "notes.txt").read_text() == "mine"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "_delta_log").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PipelineError, match="not a folder"):
        storage.ensure_table(spark, str(tmp_path / "u"), schema)
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_bronze_table_with_text_raw_from_an_older_version_asks_for_a_rebuild(spark: SparkSession, tmp_path: Path) -> None:
    from spark_jobs.bronze import ensure_bronze_table

    entity = SCENARIO.entities["drivers"]
    old = StructType([StructField("_raw", StringType()) if f.name == "_raw" else f
                      for f in bronze_schema(entity).fields if f.name != "_line"])
    cfg = PipelineConfig(scenario=SCENARIO, data=DataRoot(tmp_path))
    storage.ensure_table(spark, cfg.table("bronze", "drivers"), old)
    with pytest.raises(PipelineError, match=r"older medallion \(_raw is string, expected binary.*rebuild"):
        ensure_bronze_table(spark, cfg, "drivers")
