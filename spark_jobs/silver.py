"""Silver: typed, valid, unique by key across all batches; rejected lines go to quarantine.

`spark-submit spark_jobs/silver.py --scenario driving --data DIR [--once | --continuous]`

Per micro-batch of bronze rows (foreachBatch, so at least once):
1. classify every line with the scenario's rules (spark_jobs/rules.py);
2. quarantine: every line with a quarantine-action reason, with `_reasons` and the raw line;
3. dedupe valid rows by key: within the micro-batch (first by landing batch, then file) and
   against silver. A key already in silver *from the same landing file* is this batch's own
   earlier write (a replay after a crash), not a duplicate - so counts survive replays;
4. append the new rows to silver, and the per-rule counts to the quality table.
Every write is idempotent per (checkpoint app id, micro-batch id): see spark_jobs.storage.append_idempotent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from medallion.contracts.defects import DefectKind, Fate, SilverCheck
from medallion.contracts.errors import PipelineError
from medallion.contracts.logs import MICRO_BATCH, PIPELINE_LOGGER
from medallion.contracts.scenario import Entity
from spark_jobs import storage
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import GracefulStop, InputWatch
from spark_jobs.rules import (
    DEFAULT_LIMITS,
    DROP,
    QUARANTINE,
    LineLimits,
    Rule,
    is_fast_line,
    key_of_raw,
    rules_for,
    with_fast_typed_fields,
    with_foreign_key_checks,
    with_parsed_json,
    with_rule_results,
    with_typed_fields,
)
from spark_jobs.schemas import (
    QUALITY_SCHEMA,
    QUARANTINE_PROPERTIES,
    QUARANTINE_SCHEMA,
    silver_properties,
    silver_schema,
)

NEW, REPLAY, DUPLICATE = "new", "replay", "duplicate"
KEPT_COLUMNS = ("_raw", "_line", "_ingested_at", "_key", "_malformed", "_reasons", "_kinds", "_action", "_fail", "_status")


class QualityRow(NamedTuple):
    """One row of the quality table, field for field as QUALITY_SCHEMA (spark_jobs/schemas.py)."""

    entity: str
    batch_id: int
    micro_batch_id: int
    rule: str
    kind: str
    action: str
    checked: int
    passed: int
    failed: int
    # Filled on the `_batch` summary row only.
    bronze_rows: int | None
    silver_rows: int | None
    quarantine_rows: int | None
    duplicate_rows: int | None
    dropped_rows: int | None
    score: float | None
    recorded_at: datetime


# Called with a micro-batch's rows as silver holds them, after silver's append (gold is updated
# from them in the same micro-batch: see spark_jobs.pipeline).
OnSilverRows = Callable[[DataFrame], None]

SUMMARY_RULE = "_batch"  # the rule name of each landing batch's summary row
log = logging.getLogger(PIPELINE_LOGGER)
# Commits of quarantine and quality beside silver's own (entities of a stage run side by side:
# two writes each). Four Delta appends of 100 rows: 3.3 s in a row, 2.4 s from four threads.
SIDE_WRITES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="medallion-side-write")


@dataclass
class QualityAlerts:
    """Batches whose quality score fell below the threshold during this process's run."""

    threshold: float
    breaches: list[tuple[str, int, float]] = field(default_factory=list)

    def check(self, entity: str, batch_id: int, score: float) -> None:
        if score < self.threshold:
            self.breaches.append((entity, batch_id, score))
            log.warning("quality ALERT %s batch %d: score %.4f < threshold %.4f", entity, batch_id, score, self.threshold,
                        extra={"event": "quality_alert", "entity": entity, "landing_batch": batch_id, "score": score,
                               "threshold": self.threshold})


def classify(
    entity: Entity, dimension_keys: dict[str, DataFrame | None], limits: LineLimits = DEFAULT_LIMITS,
    fast_path: bool = True,
) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> rows with `_line`, typed fields, `_reasons`, `_kinds`, `_action` and `_key`.

    Lines in the plain form producers write (`is_fast_line`) are typed with one `from_json`
    pass; every other line takes the full classification, which reads the JSON structure of the
    line itself. Both give the same columns and values for a line the fast path takes (a test
    compares them); `fast_path=False` sends every line the full way."""
    rules = rules_for(entity)

    def full(lines: DataFrame) -> DataFrame:
        return (
            lines.transform(with_parsed_json(limits))
            .transform(with_typed_fields(entity))
            .withColumn("_key", key_of_raw(entity, limits))
        )

    def transform(df: DataFrame) -> DataFrame:
        # Silver reads the raw bytes itself; bronze's "as read" columns are not trusted here.
        lines = df.select("_raw", "_source_file", "_batch_id", "_ingested_at")
        if fast_path:
            fast = is_fast_line(entity, limits)
            typed = lines.where(fast).transform(with_fast_typed_fields(entity)).unionByName(full(lines.where(~fast)))
        else:
            typed = full(lines)
        return typed.transform(with_foreign_key_checks(entity, dimension_keys)).transform(with_rule_results(rules, entity))

    return transform


def with_dedupe_status(entity: Entity, existing: DataFrame | None) -> Callable[[DataFrame], DataFrame]:
    """Adds `_status` to valid rows: new, replay (already written by this landing file) or duplicate."""
    key = entity.key

    def transform(df: DataFrame) -> DataFrame:
        valid = F.col("_action") == "valid"
        order = Window.partitionBy(F.col(key), valid).orderBy(F.col("_batch_id"), F.col("_source_file"))
        ranked = df.withColumn("_rank", F.when(valid, F.row_number().over(order)))
        if existing is None:
            seen = ranked.withColumn("_seen_batch", F.lit(None).cast("long")).withColumn(
                "_seen_file", F.lit(None).cast("string")
            ).withColumn("_seen", F.lit(False))
        else:
            previous = existing.select(
                F.col(key).alias("_seen_key"),
                F.col("_batch_id").alias("_seen_batch"),
                F.col("_source_file").alias("_seen_file"),
            )
            seen = ranked.join(previous, ranked[key] == F.col("_seen_key"), "left").withColumn(
                "_seen", F.col("_seen_key").isNotNull()
            ).drop("_seen_key")
        same_file = F.col("_seen_batch").eqNullSafe(F.col("_batch_id")) & F.col("_seen_file").eqNullSafe(
            F.col("_source_file")
        )
        status = (
            F.when(~valid, F.lit(None))
            .when(F.col("_rank") > 1, F.lit(DUPLICATE))
            .when(~F.col("_seen"), F.lit(NEW))
            .when(same_file, F.lit(REPLAY))
            .otherwise(F.lit(DUPLICATE))
        )
        return seen.withColumn("_status", status).drop("_rank", "_seen", "_seen_batch", "_seen_file")

    return transform


def keys_seen_near(silver: DataFrame | None, batch: DataFrame, key: str) -> DataFrame | None:
    """The rows of silver whose key lies between the lowest and the highest valid key of the
    classified micro-batch `batch`: the only ones its dedupe can meet.

    Silver keeps min/max statistics on the key, so Delta reads only the files whose key range
    overlaps the batch's: with keys that grow over time (sequences, times) a micro-batch's dedupe
    costs what the batch costs, not what the table holds. One small job finds the bounds."""
    if silver is None:
        return None
    bounds = batch.where(F.col("_action") == "valid").agg(F.min(key).alias("lo"), F.max(key).alias("hi")).first()
    if bounds is None or bounds["lo"] is None:
        return silver.limit(0)
    return silver.where(F.col(key).between(F.lit(bounds["lo"]), F.lit(bounds["hi"])))


def to_silver(entity: Entity, *statuses: str) -> Callable[[DataFrame], DataFrame]:
    """Valid rows of the given dedupe statuses (default: new ones, those silver's append
    writes) in silver's schema."""
    columns = [f.name for f in silver_schema(entity).fields]
    return lambda df: df.where(F.col("_status").isin(*(statuses or (NEW,)))).select(*columns)


def to_quarantine(df: DataFrame) -> DataFrame:
    """Rejected rows in quarantine's schema."""
    return df.where(F.col("_action") == QUARANTINE).select(*[f.name for f in QUARANTINE_SCHEMA.fields])


def quality_counts(df: DataFrame, rules: list[Rule]) -> list[dict[str, Any]]:
    """Per landing batch: line counts by fate and failures per rule (one small collect).

    Most lines break no rule: each per-rule test starts with one size test (`broke`), and the
    schema test is an `arrays_overlap`, not a lambda (`exists`), which runs outside generated
    code on every row."""
    broke = F.size("_reasons") > 0
    schema_names = F.array(*[F.lit(name) for name in _schema_names(rules)])
    aggregates = [
        F.count(F.lit(1)).alias("bronze_rows"),
        F.count_if(~F.col("_malformed")).alias("parsed_rows"),
        F.count_if(~broke).alias("clean_rows"),
        F.count_if(F.col("_action") == QUARANTINE).alias("quarantine_rows"),
        F.count_if(F.col("_action") == DROP).alias("dropped_rows"),
        F.count_if(F.col("_action") == "valid").alias("valid_rows"),
        F.count_if(F.col("_status") == DUPLICATE).alias("duplicate_rows"),
        F.count_if(F.col("_status").isin(NEW, REPLAY)).alias("silver_rows"),
        F.count_if(~F.col("_malformed") & (~broke | ~F.arrays_overlap("_reasons", schema_names))).alias("schema_ok_rows"),
        F.collect_set("_source_file").alias("files"),
    ]
    aggregates += [F.count_if(broke & F.array_contains("_reasons", r.name)).alias(f"f_{i}") for i, r in enumerate(rules)]
    return [row.asDict() for row in df.groupBy("_batch_id").agg(*aggregates).collect()]


def _schema_names(rules: list[Rule]) -> list[str]:
    return [r.name for r in rules if r.schema_derived] or [SilverCheck.MALFORMED_JSON.value]


def quality_rows(entity_name: str, micro_batch_id: int, counts: list[dict[str, Any]], rules: list[Rule]) -> list[QualityRow]:
    """Rows of the quality table: one per rule and a `_batch` summary per landing batch."""
    now = datetime.now(UTC)
    rows: list[QualityRow] = []
    for batch in counts:
        batch_id = batch["_batch_id"]
        for i, rule in enumerate(rules):
            if rule.kind == DefectKind.MALFORMED_JSON:
                checked = batch["bronze_rows"]
            elif rule.schema_derived:
                checked = batch["parsed_rows"]
            else:
                checked = batch["schema_ok_rows"]
            failed = batch[f"f_{i}"]
            rows.append(QualityRow(entity_name, batch_id, micro_batch_id, rule.name, rule.kind, rule.action,
                                   checked, checked - failed, failed, None, None, None, None, None, None, now))
        valid, dups = batch["valid_rows"], batch["duplicate_rows"]
        rows.append(QualityRow(entity_name, batch_id, micro_batch_id, DefectKind.DUPLICATE.value, DefectKind.DUPLICATE.value, Fate.DEDUPE.value,
                               valid, valid - dups, dups, None, None, None, None, None, None, now))
        bronze = batch["bronze_rows"]
        rejected = batch["quarantine_rows"] + batch["dropped_rows"]
        score = (bronze - rejected) / bronze if bronze else 1.0
        rows.append(QualityRow(
            entity_name, batch_id, micro_batch_id, SUMMARY_RULE, "summary", "summary", bronze, bronze - rejected,
            rejected, bronze_rows=bronze, silver_rows=batch["silver_rows"], quarantine_rows=batch["quarantine_rows"],
            duplicate_rows=dups, dropped_rows=batch["dropped_rows"], score=float(score), recorded_at=now,
        ))
    return rows


def dimension_keys(
    spark: SparkSession, cfg: PipelineConfig, entity_name: str, batch: DataFrame | None = None
) -> dict[str, DataFrame | None]:
    """The keys each reference field may point to: the referenced silver table's keys.

    A self-reference (a component whose parent is a component) also accepts the valid keys of
    the classified micro-batch `batch`.
    """
    entity = cfg.scenario.entities[entity_name]
    keys: dict[str, DataFrame | None] = {}
    for spec in entity.fields.values():
        target = spec.references
        if target is None or target in keys:
            continue
        target_key = cfg.scenario.entities[target].key
        table = storage.read_delta(spark, cfg.table("silver", target))
        known = table.select(F.col(target_key).alias("_ref_key")) if table is not None else None
        if target == entity_name and batch is not None:
            own = batch.where(F.col("_action") == "valid").select(F.col(target_key).alias("_ref_key"))
            known = own if known is None else known.unionByName(own)
        keys[target] = known
    return keys


def promote(
    spark: SparkSession,
    cfg: PipelineConfig,
    entity_name: str,
    batch_df: DataFrame,
    micro_batch_id: int,
    txn_app_id: str,
    alerts: QualityAlerts,
    on_silver_rows: OnSilverRows | None = None,
) -> None:
    """One micro-batch of bronze rows -> quarantine, silver and quality, each written once;
    `on_silver_rows` gets the batch's rows as silver holds them (new ones, and on a replay the
    ones its first run wrote) before the quality rows are appended (gold is updated from them)."""
    started = time.perf_counter()
    entity = cfg.scenario.entities[entity_name]
    rules = rules_for(entity)
    silver_path = cfg.table("silver", entity_name)

    refs = {spec.references for spec in entity.fields.values() if spec.references}
    # A self-reference also accepts this batch's valid keys: classify once without them first.
    limits = LineLimits.of(cfg.scenario)
    pre = batch_df.transform(classify(entity, dict.fromkeys(refs), limits)) if entity_name in refs else None
    keys = dimension_keys(spark, cfg, entity_name, pre)
    # Keep only what the writes and counts read: the check columns would triple the memory.
    kept = [*silver_schema(entity).fieldNames(), *(c for c in KEPT_COLUMNS if c != "_status")]
    typed = storage.materialize(batch_df.transform(classify(entity, keys, limits)).select(*dict.fromkeys(kept)))
    try:
        existing = keys_seen_near(storage.read_delta(spark, silver_path), typed, entity.key)
        classified = storage.materialize(typed.transform(with_dedupe_status(entity, existing)))
    finally:
        storage.release(typed)
    side_writes: list[Future[bool]] = []
    try:
        counts = quality_counts(classified, rules)
        if not counts:
            return
        # An empty append still costs a Delta commit (~1 s); skipped, as a replay skips it alike.
        # Quarantine and quality are committed beside silver and gold, from another thread: each
        # write is idempotent on its own, so their order does not matter to a replay.
        if any(c["quarantine_rows"] for c in counts):
            side_writes.append(SIDE_WRITES.submit(
                storage.append_idempotent, to_quarantine(classified), cfg.table("quarantine", entity_name),
                f"{txn_app_id}-quarantine", micro_batch_id))
        failing = [r.name for r in rules if r.action == "fail" and any(c[f"f_{rules.index(r)}"] for c in counts)]
        rows = quality_rows(entity_name, micro_batch_id, counts, rules)
        quality_df = spark.createDataFrame(rows, QUALITY_SCHEMA)
        if failing:
            storage.append_idempotent(quality_df, cfg.quality_table, f"{txn_app_id}-quality", micro_batch_id)
            raise PipelineError(
                f"{entity_name}: expectation(s) {failing} with action 'fail' were broken in micro-batch "
                f"{micro_batch_id}; fix the data or change the action, then restart (the batch is retried)"
            )
        if any(c["silver_rows"] for c in counts):
            storage.append_idempotent(classified.transform(to_silver(entity)), silver_path, f"{txn_app_id}-silver", micro_batch_id)
            side_writes.append(SIDE_WRITES.submit(
                storage.append_idempotent, quality_df, cfg.quality_table, f"{txn_app_id}-quality", micro_batch_id))
            if on_silver_rows is not None:
                # The rows silver holds after this batch: new ones, and on a replay those its first run wrote.
                on_silver_rows(classified.transform(to_silver(entity, NEW, REPLAY)))
        else:
            storage.append_idempotent(quality_df, cfg.quality_table, f"{txn_app_id}-quality", micro_batch_id)
        for write in side_writes:
            write.result()  # raises what the write raised: the micro-batch fails and is retried
        # This query is the only writer of these two tables, so they can be compacted here, in
        # a long run too (dedupe reads all of silver); the shared quality table, after the pass.
        storage.compact_small_files(spark, [silver_path, cfg.table("quarantine", entity_name)])
        for row in rows:
            if row.rule == SUMMARY_RULE and row.score is not None:
                alerts.check(entity_name, row.batch_id, row.score)
        fed_gold = on_silver_rows is not None and any(c["silver_rows"] for c in counts)
        log_micro_batch(entity_name, micro_batch_id, counts, rules, started, gold_updated=fed_gold)
    finally:
        futures_wait(side_writes)  # they read `classified`: freed only after them
        storage.release(classified)


def landed_at(files: list[str]) -> float | None:
    """When the oldest of these landing files was written (seconds since the epoch), or None
    when none of them is a local file that still exists."""
    times = []
    for name in files:
        try:
            times.append(os.stat(unquote(urlparse(name).path)).st_mtime)
        except OSError:
            continue
    return min(times) if times else None


def log_micro_batch(entity_name: str, micro_batch_id: int, counts: list[dict[str, Any]], rules: list[Rule],
                    started: float, gold_updated: bool) -> None:
    """One log line per micro-batch: rows in, written, quarantined (also by rule), the lowest
    quality score of its landing batches, its time and its lag behind landing (with
    `gold_updated`, the gold tables fed by silver were updated inside it: the lag is landing -> gold)."""
    rows_in = sum(c["bronze_rows"] for c in counts)
    by_reason = {r.name: sum(c[f"f_{i}"] for c in counts) for i, r in enumerate(rules) if r.action == QUARANTINE}
    scores = [(c["bronze_rows"] - c["quarantine_rows"] - c["dropped_rows"]) / c["bronze_rows"] for c in counts if c["bronze_rows"]]
    written = sum(c["silver_rows"] for c in counts)
    quarantined = sum(c["quarantine_rows"] for c in counts)
    ms = round((time.perf_counter() - started) * 1000)
    landed = landed_at([f for c in counts for f in c["files"]])
    lag = round(time.time() - landed, 1) if landed is not None else None
    log.info(
        "silver %s micro-batch %d: %d rows in, %d written, %d quarantined, %d ms, lag %s",
        entity_name, micro_batch_id, rows_in, written, quarantined, ms, f"{lag:.1f} s" if lag is not None else "unknown",
        extra={"event": MICRO_BATCH, "layer": "silver", "entity": entity_name, "batch_id": micro_batch_id,
               "landing_batches": sorted(c["_batch_id"] for c in counts), "rows_in": rows_in, "rows_written": written,
               "rows_quarantined": quarantined, "quarantined_by_reason": {k: v for k, v in by_reason.items() if v},
               "score": round(min(scores), 6) if scores else None, "gold_updated": gold_updated, "ms": ms, "lag_s": lag},
    )


def ensure_silver_table(spark: SparkSession, cfg: PipelineConfig, entity_name: str) -> str:
    """Create an entity's silver table unless it exists (its writer or gold, its reader, may
    come first); returns its path."""
    entity = cfg.scenario.entities[entity_name]
    path = cfg.table("silver", entity_name)
    storage.ensure_table(spark, path, silver_schema(entity), silver_properties(entity))
    return path


def start(spark: SparkSession, cfg: PipelineConfig, entity_name: str, alerts: QualityAlerts,
          on_silver_rows: OnSilverRows | None = None) -> StreamingQuery:
    """Start the silver stream of one entity (reading its bronze table as a stream)."""
    from spark_jobs.bronze import ensure_bronze_table

    bronze_path = ensure_bronze_table(spark, cfg, entity_name)
    ensure_silver_table(spark, cfg, entity_name)
    storage.ensure_table(spark, cfg.table("quarantine", entity_name), QUARANTINE_SCHEMA, QUARANTINE_PROPERTIES)
    storage.ensure_table(spark, cfg.quality_table, QUALITY_SCHEMA)
    checkpoint = cfg.checkpoint("silver", entity_name)
    txn_app_id = storage.app_id(checkpoint)

    def each_batch(batch_df: DataFrame, micro_batch_id: int) -> None:
        promote(spark, cfg, entity_name, batch_df, micro_batch_id, txn_app_id, alerts, on_silver_rows)

    stream = storage.read_delta_stream(spark, bronze_path, cfg.scenario.pipeline.max_files_per_trigger)
    return storage.start_batches(stream, f"silver_{entity_name}", checkpoint, each_batch)


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    alerts: QualityAlerts | None = None,
    stop: GracefulStop | None = None,
    watch: InputWatch | None = None,
    on_silver_rows: Callable[[str], OnSilverRows | None] | None = None,
) -> None:
    """Promote every entity's bronze rows to silver, in stages: an entity starts once every
    entity it references is done (so foreign keys are checked against complete tables);
    the entities of one stage run side by side. `on_silver_rows(entity)` gives the hook an
    entity's micro-batches call with their silver rows (or None)."""
    from spark_jobs.lifecycle import STOP, Planned, run_queries

    alerts = alerts or QualityAlerts(cfg.scenario.pipeline.quality_threshold)
    stop = stop or STOP
    # Silver's input is its bronze table: a row is classified once, when it first arrives.
    stages = [
        [Planned(f"silver/{name}", partial(start, spark, cfg, name, alerts, on_silver_rows(name) if on_silver_rows else None),
                 partial(storage.table_state, cfg.table("bronze", name)))
         for name in stage]
        for stage in cfg.scenario.processing_stages
    ]
    run_queries(stages, stop, watch)
    if not stop.requested.is_set():
        storage.compact_small_files(spark, [cfg.quality_table])


def main() -> None:
    """spark-submit entry point."""
    from spark_jobs.lifecycle import job_main

    job_main("silver", run)


if __name__ == "__main__":
    main()
