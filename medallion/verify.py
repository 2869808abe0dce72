"""`medallion verify`: reconcile every table with the generator's ledger (docs/design.md §3.6).

The expected side is computed from the manifests and the landing files alone (an independent
parse in plain Python); the actual side is read from the Delta tables. Checks, per entity:

- bronze rows per batch = manifest lines;
- silver keys (per batch) = the clean keys: lines with no defect or a keep-fate defect;
- silver rows per batch = manifest `clean_records`;
- every quarantine-fate ledger entry is in quarantine with that kind (by key, or by file and
  count for malformed lines), and quarantine holds nothing else;
- duplicates removed per batch (quality table) = ledger duplicates;
- the quality table balances: bronze = silver + quarantine + duplicates + dropped;
and per gold table: gold = a recomputation from silver, cell by cell; per table of anomaly
flags, their precision and recall against the manifests' anomalies (reported; a failure only
below the table's configured minimum).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.contracts.defects import AnomalySubtype, DefectKind, Fate
from medallion.contracts.errors import VerificationFailed
from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import AnomalyEntry, BatchManifest, DefectEntry, read_manifests
from medallion.contracts.scenario import Entity, GoldTable, Scenario

if TYPE_CHECKING:
    from spark_jobs.session import SessionOptions


@dataclass(frozen=True)
class Check:
    """One line of the verification table."""

    subject: str
    check: str
    expected: Any
    actual: Any
    ok: bool
    detail: str = ""


@dataclass
class EntityLedger:
    """What the generator says it wrote for one entity, batch by batch."""

    entity: str
    manifests: list[BatchManifest]
    lines: dict[int, int] = field(default_factory=dict)
    clean_records: dict[int, int] = field(default_factory=dict)
    clean_keys: dict[int, list[str]] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)
    quarantine_keyed: list[tuple[int, str, str]] = field(default_factory=list)  # batch, key, kind
    quarantine_per_batch: dict[int, int] = field(default_factory=dict)
    malformed_per_file: Counter[str] = field(default_factory=Counter)
    unkeyed_per_file_kind: Counter[tuple[str, str]] = field(default_factory=Counter)


def ledger_fates(manifest: BatchManifest) -> list[tuple[DefectEntry, DefectKind, Fate]]:
    """Every ledger entry of a manifest with its kind and the fate the pipeline owes it: what
    `verify` (and `medallion report`'s ledger-vs-caught table) expects to find caught."""
    out = []
    for defect in manifest.defects:
        kind = DefectKind(defect.kind)
        out.append((defect, kind, kind.fate(defect.change)))
    return out


def read_ledger(data: DataRoot, entity_name: str, entity: Entity) -> EntityLedger:
    """Parse manifests and landing files into the expected state of every table."""
    ledger = EntityLedger(entity_name, read_manifests(data, entity_name))
    for manifest in ledger.manifests:
        batch = manifest.batch_id
        ledger.lines[batch] = manifest.lines
        ledger.clean_records[batch] = manifest.clean_records
        not_clean: set[tuple[str, int]] = set()
        quarantined = 0
        for defect, kind, fate in ledger_fates(manifest):
            if fate == Fate.KEEP:
                continue
            not_clean.add((defect.file, defect.line))
            if fate == Fate.DEDUPE:
                ledger.duplicates[batch] = ledger.duplicates.get(batch, 0) + 1
                continue
            quarantined += 1
            name = Path(defect.file).name
            if kind == DefectKind.MALFORMED_JSON:
                ledger.malformed_per_file[name] += 1
            elif defect.key is not None:
                ledger.quarantine_keyed.append((batch, defect.key, kind))
            else:
                ledger.unkeyed_per_file_kind[(name, kind)] += 1
        ledger.quarantine_per_batch[batch] = quarantined
        keys: list[str] = []
        for entry in manifest.files:
            with (data.root / entry.path).open("rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    if (entry.path, number) in not_clean:
                        continue
                    keys.append(str(json.loads(raw)[entity.key]))
        ledger.clean_keys[batch] = keys
    return ledger


def _compare_counts(subject: str, check: str, expected: dict[int, int], actual: dict[int, int]) -> Check:
    batches = sorted(set(expected) | set(actual))
    wrong = [b for b in batches if expected.get(b, 0) != actual.get(b, 0)]
    detail = ", ".join(f"b{b}: {expected.get(b, 0)} vs {actual.get(b, 0)}" for b in wrong[:5])
    return Check(subject, check, sum(expected.values()), sum(actual.values()), not wrong, detail)


def verify_entity(spark: Any, scenario: Scenario, data: DataRoot, entity_name: str) -> list[Check]:
    """Every ledger check of one entity."""
    from pyspark.sql import functions as F

    from spark_jobs.storage import read_delta

    entity = scenario.entities[entity_name]
    ledger = read_ledger(data, entity_name, entity)
    checks: list[Check] = []
    if not ledger.manifests:
        return [Check(entity_name, "manifests", "> 0", 0, False, "no manifests: run `medallion generate` first")]

    bronze = read_delta(spark, str(data.table("bronze", entity_name)))
    silver = read_delta(spark, str(data.table("silver", entity_name)))
    quarantine = read_delta(spark, str(data.table("quarantine", entity_name)))
    quality = read_delta(spark, str(data.quality))
    missing = [n for n, t in (("bronze", bronze), ("silver", silver), ("quarantine", quarantine), ("quality", quality)) if t is None]
    if missing:
        return [Check(entity_name, "tables exist", "all", f"missing {missing}", False, "run `medallion pipeline` first")]
    assert bronze is not None and silver is not None and quarantine is not None and quality is not None

    def per_batch(df: Any) -> dict[int, int]:
        return {r[0]: r[1] for r in df.groupBy("_batch_id").count().collect()}

    checks.append(_compare_counts(entity_name, "bronze rows = manifest lines", ledger.lines, per_batch(bronze)))
    checks.append(_compare_counts(entity_name, "silver rows = clean_records", ledger.clean_records, per_batch(silver)))

    expected_keys = [(k, b) for b, keys in ledger.clean_keys.items() for k in keys]
    key_schema = f"`{entity.key}` string, _batch_id long"
    expected_df = spark.createDataFrame(expected_keys, key_schema) if expected_keys else spark.createDataFrame([], key_schema)
    actual_df = silver.select(F.col(entity.key).cast("string"), "_batch_id")
    lost = expected_df.exceptAll(actual_df)
    extra = actual_df.exceptAll(expected_df)
    lost_n, extra_n = lost.count(), extra.count()
    sample = [r[0] for r in (lost.limit(3).collect() + extra.limit(3).collect())]
    checks.append(
        Check(entity_name, "silver keys = clean keys", len(expected_keys), actual_df.count(),
              lost_n == 0 and extra_n == 0, f"lost {lost_n}, unexpected {extra_n} {sample}" if lost_n or extra_n else "")
    )

    # Quarantine: keyed entries must be there with their kind; malformed lines by file and count.
    q_rows = quarantine.select(
        "_key", "_batch_id", "_kinds", F.element_at(F.split("_source_file", "/"), -1).alias("file")
    ).collect()
    present = {(r["_batch_id"], r["_key"], kind) for r in q_rows for kind in r["_kinds"]}
    missed = [e for e in ledger.quarantine_keyed if e not in present]
    checks.append(
        Check(entity_name, "quarantine has every keyed defect", len(ledger.quarantine_keyed),
              len(ledger.quarantine_keyed) - len(missed), not missed,
              ", ".join(f"b{b} {k} {kind}" for b, k, kind in missed[:3]))
    )
    malformed_actual = Counter(r["file"] for r in q_rows if DefectKind.MALFORMED_JSON in r["_kinds"])
    bad_files = [f for f in set(ledger.malformed_per_file) | set(malformed_actual) if ledger.malformed_per_file[f] != malformed_actual[f]]
    checks.append(
        Check(entity_name, "malformed lines quarantined (per file)", sum(ledger.malformed_per_file.values()),
              sum(malformed_actual.values()), not bad_files, ", ".join(sorted(bad_files)[:3]))
    )
    if ledger.unkeyed_per_file_kind:
        actual_kinds = Counter((r["file"], kind) for r in q_rows for kind in r["_kinds"])
        short = [fk for fk, n in ledger.unkeyed_per_file_kind.items() if actual_kinds[fk] < n]
        checks.append(
            Check(entity_name, "unkeyed defects quarantined (per file)", sum(ledger.unkeyed_per_file_kind.values()),
                  sum(min(actual_kinds[fk], n) for fk, n in ledger.unkeyed_per_file_kind.items()), not short,
                  ", ".join(f"{f} {k}" for f, k in short[:3]))
        )
    q_per_batch: dict[int, int] = defaultdict(int)
    for r in q_rows:
        q_per_batch[r["_batch_id"]] += 1
    checks.append(_compare_counts(entity_name, "quarantine rows = quarantine-fate defects", ledger.quarantine_per_batch, dict(q_per_batch)))

    summary = quality.where((F.col("entity") == entity_name) & (F.col("rule") == "_batch"))
    sums = summary.groupBy("batch_id").agg(
        F.sum("bronze_rows").alias("bronze"), F.sum("silver_rows").alias("silver"),
        F.sum("quarantine_rows").alias("quarantine"), F.sum("duplicate_rows").alias("dups"),
        F.sum("dropped_rows").alias("dropped"),
    ).collect()
    dups_actual = {r["batch_id"]: r["dups"] for r in sums}
    checks.append(_compare_counts(entity_name, "duplicates removed = ledger duplicates", ledger.duplicates, dups_actual))
    unbalanced = [r["batch_id"] for r in sums if r["bronze"] != r["silver"] + r["quarantine"] + r["dups"] + r["dropped"]]
    checks.append(
        Check(entity_name, "quality: bronze = silver + quarantine + dups + dropped", len(sums),
              len(sums) - len(unbalanced), not unbalanced, f"batches {unbalanced[:5]}" if unbalanced else "")
    )
    return checks


def verify_gold(spark: Any, scenario: Scenario, data: DataRoot) -> list[Check]:
    """Each gold table equals its recomputation from silver, cell by cell."""
    from spark_jobs.config import pipeline_config
    from spark_jobs.gold import load_dimensions, recompute
    from spark_jobs.storage import read_delta

    cfg = pipeline_config(scenario, data)
    checks = []
    for gold in scenario.gold:
        table = read_delta(spark, cfg.table("gold", gold.name))
        silver = read_delta(spark, cfg.table("silver", gold.source))
        if table is None or silver is None:
            checks.append(Check(f"gold.{gold.name}", "table exists", "yes", "no", False, "run `medallion pipeline` first"))
            continue
        expected = recompute(gold, silver, load_dimensions(spark, cfg, gold)).select(*table.columns)
        only_expected = expected.exceptAll(table).count()
        only_gold = table.exceptAll(expected).count()
        checks.append(
            Check(f"gold.{gold.name}", "gold = recomputation from silver", expected.count(), table.count(),
                  only_expected == 0 and only_gold == 0,
                  f"{only_expected} cells differ or missing, {only_gold} unexpected" if only_expected or only_gold else "")
        )
    return checks


@dataclass(frozen=True)
class AnomalyScores:
    """How a gold table's anomaly flags match the manifests' anomalies, reading by reading
    (a reading-sensor pair is labelled with a subtype when an anomaly entry covers it: a spike
    by its key, a stuck or drift period by unit, sensor and event time in [start, end]).
    A flag is right when the pair is labelled with the flag's subtype."""

    table: str
    flags: int
    right: int
    labelled: dict[str, int]  # per subtype: labelled reading-sensor pairs
    found: dict[str, int]  # per subtype: labelled pairs flagged with that subtype

    @property
    def precision(self) -> float:
        return self.right / self.flags if self.flags else 1.0

    def recall(self, *subtypes: str) -> float:
        """Recall over the given subtypes (default: the ones a flag can name, spike and stuck)."""
        chosen = subtypes or tuple(FLAGGED_SUBTYPES)
        labelled = sum(self.labelled.get(s, 0) for s in chosen)
        return sum(self.found.get(s, 0) for s in chosen) / labelled if labelled else 1.0

    def summary(self) -> str:
        parts = [f"precision {self.precision:.3f} ({self.right} of {self.flags} flags)",
                 f"recall {self.recall():.3f}"]
        for subtype in AnomalySubtype:
            if subtype in FLAGGED_SUBTYPES:
                parts.append(f"{subtype} {self.recall(subtype):.3f} ({self.found.get(subtype, 0)}/{self.labelled.get(subtype, 0)})")
            else:
                parts.append(f"{subtype}: {self.labelled.get(subtype, 0)} readings, no flag for it")
        return "; ".join(parts)


# The subtypes the anomaly flags name (gold's `flag` column); drift has no flag.
FLAGGED_SUBTYPES = (AnomalySubtype.SPIKE, AnomalySubtype.STUCK)


def ledger_anomalies(data: DataRoot, entity: str) -> list[AnomalyEntry]:
    """Every anomaly entry of an entity's manifests, in batch order."""
    return [a for m in read_manifests(data, entity) for a in m.anomalies]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def anomaly_scores(spark: Any, gold: GoldTable, flags: Any, anomalies: list[AnomalyEntry]) -> AnomalyScores:
    """Score a flags table (a DataFrame of the gold table) against the ledger's anomalies."""
    from pyspark.sql import functions as F

    assert gold.anomalies is not None
    time = gold.anomaly_window.column
    keyed_schema = "subtype string, sensor string, reading_key string"
    keyed = [(a.subtype, a.sensor, a.key) for a in anomalies if a.key is not None]
    periods_schema = "subtype string, sensor string, unit string, start timestamp, `end` timestamp"
    periods = [(a.subtype, a.sensor, a.engine, _instant(a.start), _instant(a.end)) for a in anomalies if a.key is None]
    pairs = flags.select(F.col(gold.anomaly_unit).cast("string").alias("unit"), "reading_key", "sensor", time, "flag")
    by_key = pairs.join(F.broadcast(spark.createDataFrame(keyed, keyed_schema)), ["reading_key", "sensor"])
    in_period = pairs.join(
        F.broadcast(spark.createDataFrame(periods, periods_schema)).alias("p"),
        ["unit", "sensor"],
    ).where((F.col(time) >= F.col("start")) & (F.col(time) <= F.col("end")))
    labelled = (
        by_key.select("reading_key", "sensor", "subtype", "flag")
        .unionByName(in_period.select("reading_key", "sensor", "subtype", "flag"))
        .distinct()
    )
    per_subtype = labelled.groupBy("subtype").agg(
        F.count(F.lit(1)).alias("labelled"), F.count(F.when(F.col("flag") == F.col("subtype"), 1)).alias("found")
    ).collect()
    flagged = flags.where(F.col("flag").isNotNull())
    right = flagged.join(
        labelled.select("reading_key", "sensor", F.col("subtype").alias("flag")).distinct(), ["reading_key", "sensor", "flag"], "left_semi"
    ).count()
    return AnomalyScores(
        table=gold.name, flags=flagged.count(), right=right,
        labelled={r["subtype"]: r["labelled"] for r in per_subtype}, found={r["subtype"]: r["found"] for r in per_subtype},
    )


def verify_anomalies(spark: Any, scenario: Scenario, data: DataRoot) -> list[Check]:
    """Each anomaly-flag table's precision and recall against the manifests' anomalies: a check
    that fails only below the table's configured `min_precision` / `min_recall`."""
    from spark_jobs.storage import read_delta

    checks = []
    for gold in scenario.gold:
        if gold.anomalies is None:
            continue
        table = read_delta(spark, str(data.table("gold", gold.name)))
        if table is None:
            continue  # verify_gold reports the missing table
        scores = anomaly_scores(spark, gold, table, ledger_anomalies(data, gold.source))
        wanted = [(name, value, minimum) for name, value, minimum in (
            ("precision", scores.precision, gold.anomalies.min_precision), ("recall", scores.recall(), gold.anomalies.min_recall))]
        for name, value, minimum in wanted:
            checks.append(Check(f"gold.{gold.name}", f"anomaly flags: {name}", "reported" if minimum is None else f">= {minimum}",
                                round(value, 4), minimum is None or value >= minimum, scores.summary() if name == "precision" else ""))
    return checks


def verify(spark: Any, scenario: Scenario, data: DataRoot) -> list[Check]:
    """All checks for every entity and gold table of the scenario."""
    checks: list[Check] = []
    for name in scenario.processing_order:
        checks.extend(verify_entity(spark, scenario, data, name))
    checks.extend(verify_gold(spark, scenario, data))
    checks.extend(verify_anomalies(spark, scenario, data))
    return checks


def render(checks: list[Check]) -> None:
    """Print the checks as one table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="medallion verify", show_lines=False)
    for column in ("subject", "check", "expected", "actual", "ok", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red bold]FAIL[/red bold]"
        table.add_row(check.subject, check.check, str(check.expected), str(check.actual), mark, check.detail)
    Console(width=160).print(table)


def run_verify(scenario: Scenario, data: DataRoot, session: SessionOptions) -> list[Check]:
    """`medallion verify` as a library call: start Spark, check, print the table.

    Raises:
        VerificationFailed: any check failed (after the table is printed).
    """
    from spark_jobs.session import build_session

    return report_checks(verify(build_session(session), scenario, data))


def report_checks(checks: list[Check]) -> list[Check]:
    """What `medallion verify` prints for its checks: the table, the anomaly flags' quality, and
    the verdict.

    Raises:
        VerificationFailed: any check failed (after the table is printed).
    """
    render(checks)
    for check in checks:
        if check.check == "anomaly flags: precision":
            print(f"anomaly flags {check.subject}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise VerificationFailed(f"{len(failed)} of {len(checks)} checks failed")
    print(f"all {len(checks)} checks hold")
    return checks
