"""`medallion report` on a real lake: its numbers against the tables (read by Spark, an independent
engine), no pyspark in its process, and its layout in a real headless Chromium at 1280 px."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion.contracts.defects import DefectKind, Fate
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from spark_jobs.config import pipeline_config
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.slow]

WINDOW = 1280
# Runs the CLI, then says which Spark modules the process imported.
REPORT_PROBE = (
    "import sys\nfrom medallion.cli import main\ncode = main(['report', '--data', sys.argv[1], '--out', sys.argv[2]])\n"
    "print('SPARK_MODULES=' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'delta'))))\n"
    "sys.exit(code)\n"
)


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, and which rows are marked bad."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.bad: list[list[bool]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
            self.bad.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.bad[-1].append(("class", "bad") in attrs)
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def table_by_header(self, column: str) -> tuple[list[dict[str, str]], list[bool]]:
        """The first table with a header cell `column`: rows as dicts, and which are marked bad."""
        for rows, bad in zip(self.tables, self.bad, strict=True):
            if rows and column in rows[0]:
                return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]], bad[1:]
        raise AssertionError(f"no table with a column {column!r}")


def scalar(frame: DataFrame) -> Any:
    """The one value of a one-row, one-column DataFrame."""
    row = frame.first()
    assert row is not None
    return row[0]


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    data = DataRoot(tmp_path_factory.mktemp("report-lake"))
    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small",
                    "--seed", "21", "--data", str(data.root), "--batches", "4", "--quiet", "--no-fsync"], check=True)
    run(spark, pipeline_config(load_scenario("driving", profile="small"), data), GracefulStop())
    return data


@pytest.fixture(scope="module")
def report(lake: DataRoot) -> tuple[Path, str]:
    """The page, written by the CLI in a process of its own; and that process's stdout."""
    out = lake.root / "out" / "report.html"
    out.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", REPORT_PROBE, str(lake.root), str(out)],
                          check=True, capture_output=True, text=True, timeout=120)
    return out, done.stdout


def test_report_starts_no_jvm(report: tuple[Path, str]) -> None:
    out, stdout = report
    assert f"report written to {out}" in stdout
    assert "SPARK_MODULES=\n" in stdout, stdout


def test_report_numbers_match_the_tables(spark: SparkSession, lake: DataRoot, report: tuple[Path, str]) -> None:
    page = report[0].read_text(encoding="utf-8")
    parsed = Tables()
    parsed.feed(page)

    def count(layer: str, name: str) -> int:
        return spark.read.format("delta").load(str(lake.table(layer, name))).count()

    scenario = load_scenario("driving", profile="small")
    # Lines landed, counted here from the files; every line is one bronze row.
    lines = {e: sum(p.read_bytes().count(b"\n") for p in lake.landing_dir(e).glob("*.jsonl")) for e in scenario.entities}
    headline = re.search(r"id='lines-landed'>([\d,]+)<", page)
    assert headline is not None and number(headline[1]) == sum(lines.values()) > 0
    layers, _ = parsed.table_by_header("lines landed")
    assert {r["entity"] for r in layers} == set(scenario.entities)
    for row in layers:
        entity = row["entity"]
        assert number(row["lines landed"]) == lines[entity] == count("bronze", entity)
        assert number(row["bronze"]) == count("bronze", entity)
        assert number(row["silver"]) == count("silver", entity)
        assert number(row["quarantine"]) == count("quarantine", entity)
    gold, _ = parsed.table_by_header("gold table")
    assert {r["gold table"]: number(r["rows"]) for r in gold} == {g.name: count("gold", g.name) for g in scenario.gold}

    quality = spark.read.format("delta").load(str(lake.quality))
    # Ledger: counted here from the manifests' raw JSON; caught: quarantine rows by kind (Spark).
    ledger, bad = parsed.table_by_header("fate")
    expected: dict[tuple[str, str, str], int] = {}
    for entity in scenario.entities:
        for manifest in sorted(lake.manifest_dir(entity).glob("b*.json")):
            for defect in json.loads(manifest.read_text())["defects"]:
                fate = DefectKind(defect["kind"]).fate(defect.get("change"))
                key = (entity, defect["kind"], str(fate))
                expected[key] = expected.get(key, 0) + 1
    assert {(r["entity"], r["kind"], r["fate"]): number(r["ledger"]) for r in ledger} == expected
    assert not any(bad), "the pipeline catches every defect of the ledger: no row may be red"
    for row in ledger:
        if row["fate"] == Fate.QUARANTINE:
            caught = spark.read.format("delta").load(str(lake.table("quarantine", row["entity"]))).where(
                F.array_contains("_kinds", row["kind"])).count()
            assert number(row["caught"]) == caught == number(row["ledger"])
        elif row["fate"] == Fate.DEDUPE:
            # Caught: the duplicates silver removed, summed here from the quality table (Spark).
            removed = scalar(quality.where((F.col("entity") == row["entity"]) & (F.col("rule") == "_batch")).agg(
                F.sum("duplicate_rows")))
            assert number(row["caught"]) == removed == number(row["ledger"])
        else:
            assert row["caught"] == "kept by design"

    # Latency per landing batch, recomputed here: the newest mtime of the batch's files to the
    # newest bronze `_ingested_at` of its rows (Spark); silver + gold comes after bronze.
    latency, _ = parsed.table_by_header("landing batch")
    landed: dict[tuple[str, int], float] = {}
    for entity in scenario.entities:
        for path in lake.landing_dir(entity).glob("*.jsonl"):
            batch_key = (entity, int(path.name.split("-b")[1][:6]))
            landed[batch_key] = max(landed.get(batch_key, 0.0), path.stat().st_mtime)
    assert {(r["entity"], int(r["landing batch"])) for r in latency} == set(landed)
    for r in latency:
        entity, batch = r["entity"], int(r["landing batch"])
        ingested = scalar(spark.read.format("delta").load(str(lake.table("bronze", entity))).where(F.col("_batch_id") == batch).agg(
            F.max(F.unix_micros("_ingested_at")))) / 1e6
        to_bronze = float(r["to bronze (s)"].replace(",", ""))
        assert to_bronze == pytest.approx(ingested - landed[(entity, batch)], abs=0.051)  # shown to 0.1 s
        assert float(r["to silver + gold (s)"].replace(",", "")) >= to_bronze > 0

    # Quarantine by rule: every rule a row breaks counts once (Spark explodes `_reasons`).
    by_rule, _ = parsed.table_by_header("rule")
    expected_rules = {}
    for entity in scenario.entities:
        table = spark.read.format("delta").load(str(lake.table("quarantine", entity)))
        for rule, rows in table.select(F.explode("_reasons").alias("rule")).groupBy("rule").count().collect():
            expected_rules[(entity, rule)] = rows
    assert {(r["entity"], r["rule"]): number(r["rows"]) for r in by_rule} == expected_rules

    # Micro-batches: one table row per `_metrics` row, with its input rows.
    micro, _ = parsed.table_by_header("input rows")
    metrics = spark.read.format("delta").load(str(lake.metrics))
    assert len(micro) == metrics.count() > 0
    assert sum(number(r["input rows"]) for r in micro) == scalar(metrics.agg(F.sum("num_input_rows")))


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is missing: scripts/setup.sh installs it (apt-get install chromium)"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={WINDOW},900", *args], capture_output=True, text=True, timeout=120, check=True)


def test_report_fits_1280_px_in_chromium(report: tuple[Path, str], tmp_path: Path) -> None:
    # The test's copy, not the product, gets a script that writes the page's width into its title.
    probe = tmp_path / "probe.html"
    probe.write_text(report[0].read_text(encoding="utf-8") + (
        "<script>window.addEventListener('load', () => {"
        "document.title = 'scrollWidth=' + document.documentElement.scrollWidth;});</script>"
    ), encoding="utf-8")
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    width = re.search(r"<title>scrollWidth=(\d+)</title>", dom)
    assert width is not None, dom[:500]
    assert int(width[1]) <= WINDOW

    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", report[0].as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[1] == WINDOW
    assert pixels.std() > 0.05, "the screenshot is blank"


def test_a_metrics_table_from_elsewhere_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from medallion import cli

    data = DataRoot(tmp_path / "data")
    write_deltalake(str(data.metrics), pa.table({"query": ["bronze_x"], "timestamp": [1]}))
    code = cli.main(["report", "--data", str(data.root)])
    err = capsys.readouterr().err
    assert code != 0 and "lacks the column(s) batch_id, num_input_rows" in err and "fresh data root" in err, err
    assert not (data.root / "report.html").exists()
