"""Bronze: every landed line becomes one Delta row, as read, with its lineage.

`spark-submit spark_jobs/bronze.py --scenario driving --data DIR [--once | --continuous]`
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from medallion.contracts.scenario import Entity
from spark_jobs import storage
from spark_jobs.config import PipelineConfig
from spark_jobs.lifecycle import GracefulStop, InputWatch
from spark_jobs.rules import DEFAULT_LIMITS, LineLimits
from spark_jobs.schemas import BRONZE_PROPERTIES, CORRUPT_RECORD, bronze_schema, read_schema

BATCH_IN_FILE_NAME = r"-b(\d{6})-p\d{2}\.jsonl$"


def batch_id_from_path(path: Column) -> Column:
    """The landing batch id encoded in a file name (`...-b000007-p00.jsonl` -> 7)."""
    return F.regexp_extract(path, BATCH_IN_FILE_NAME, 1).cast("long")


def with_lineage(limits: LineLimits = DEFAULT_LIMITS) -> Callable[[DataFrame], DataFrame]:
    """Adds `_raw` (the line's exact bytes), `_line` (the line as text where it is valid UTF-8
    and at most `max_line_bytes` long, else null), `_batch_id` (from the file name) and
    `_ingested_at`.

    The text source hands over the bytes it read unchanged; a string column holding invalid
    UTF-8 would make the table unreadable to engines that validate strings, so the bytes are
    kept as binary (the cast copies them as they are) and the text only where it is valid. A
    line past the size limit is kept once, as bytes: a second copy of it as text is what
    exhausts memory in the layers after bronze.
    """

    def transform(df: DataFrame) -> DataFrame:
        value = F.col("value")
        within = F.octet_length(value) <= F.lit(limits.max_line_bytes)
        return (
            df.withColumn("_raw", value.cast("binary"))
            .withColumn("_line", F.when(within & F.is_valid_utf8(value), value))
            .drop("value")
            .withColumn("_batch_id", batch_id_from_path(F.col("_source_file")))
            .withColumn("_ingested_at", F.current_timestamp())
        )

    return transform


def with_parsed_record(entity: Entity, limits: LineLimits = DEFAULT_LIMITS) -> Callable[[DataFrame], DataFrame]:
    """Parses `_line` with the entity's explicit schema, PERMISSIVE, keeping `_corrupt_record`.

    This is bronze's "as read" view; silver classifies the raw line itself, because Spark's
    reader accepts trailing garbage and can't tell a wrong type from broken JSON (docs/design.md §5.1).
    Lines without `_line` (not valid UTF-8, or longer than the limit) are not parsed.
    """
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}

    def transform(df: DataFrame) -> DataFrame:
        parsed = F.from_json(F.col("_line"), read_schema(entity), options)
        return df.withColumn("_record", parsed).select("*", "_record.*").drop("_record")

    return transform


def to_bronze(entity: Entity, limits: LineLimits = DEFAULT_LIMITS) -> Callable[[DataFrame], DataFrame]:
    """The full bronze transform of landing lines, ending in the bronze schema's select."""
    columns = [field.name for field in bronze_schema(entity).fields]

    def transform(df: DataFrame) -> DataFrame:
        return df.transform(with_lineage(limits)).transform(with_parsed_record(entity, limits)).select(*columns)

    return transform


def ensure_bronze_table(spark: SparkSession, cfg: PipelineConfig, entity_name: str) -> str:
    """Create an entity's bronze table unless it exists (its writer or its reader may come
    first); returns its path."""
    path = cfg.table("bronze", entity_name)
    storage.ensure_table(spark, path, bronze_schema(cfg.scenario.entities[entity_name]), BRONZE_PROPERTIES)
    return path


def start(spark: SparkSession, cfg: PipelineConfig, entity_name: str) -> StreamingQuery:
    """Start the bronze stream of one entity."""
    entity = cfg.scenario.entities[entity_name]
    path = ensure_bronze_table(spark, cfg, entity_name)
    storage.screen_landing(cfg, entity_name)
    lines = storage.read_landing_stream(spark, cfg, entity_name).transform(to_bronze(entity, LineLimits.of(cfg.scenario)))
    checkpoint = cfg.checkpoint("bronze", entity_name)
    txn_app_id = storage.app_id(checkpoint)
    # Earlier versions wrote bronze with Delta's streaming sink: a batch it wrote whose
    # checkpoint commit a crash lost must not be written again by the `foreachBatch` path.
    sink_written = storage.delta_sink_version(checkpoint, path)

    def each_batch(batch_df: DataFrame, micro_batch_id: int) -> None:
        if micro_batch_id > sink_written:
            storage.append_idempotent(batch_df, path, txn_app_id, micro_batch_id)

    return storage.start_batches(lines, f"bronze_{entity_name}", checkpoint, each_batch)


def run(spark: SparkSession, cfg: PipelineConfig, stop: GracefulStop | None = None, watch: InputWatch | None = None) -> None:
    """Promote the landing zone of every entity to bronze, until what has landed is in.

    One entity at a time, referrers before what they reference: producers land a batch's
    dimension files before its fact files, so a fact file seen here has its dimension files
    seen after it, and silver never meets a fact before its dimension rows.
    """
    from spark_jobs.lifecycle import STOP, Planned, run_queries

    stop = stop or STOP
    order = list(reversed(cfg.scenario.processing_order))
    storage.check_data_root(cfg)
    stages = [[Planned(f"bronze/{name}", partial(start, spark, cfg, name), partial(storage.landing_state, cfg, name))]
              for name in order]
    run_queries(stages, stop, watch)
    if not stop.requested.is_set():
        storage.compact_small_files(spark, [cfg.table("bronze", name) for name in order])


def main() -> None:
    """spark-submit entry point."""
    from spark_jobs.lifecycle import job_main

    job_main("bronze", run)


if __name__ == "__main__":
    main()
