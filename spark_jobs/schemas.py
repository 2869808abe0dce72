"""Spark schemas of every table, derived from the scenario (each layer ends in a select of these)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from medallion.contracts.scenario import Entity

SPARK_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
    "timestamp": TimestampType(),
    "date": DateType(),
}

CORRUPT_RECORD = "_corrupt_record"
# A landed line in two columns: `_raw`, its exact bytes (binary, as landing files may hold
# invalid UTF-8, which a string column must not: other engines validate strings and refuse
# such tables), and `_line`, the same line as text where it is valid UTF-8 and at most
# `pipeline.max_line_bytes` long (else null).
RAW_LINE = [
    StructField("_raw", BinaryType(), True),
    StructField("_line", StringType(), True),
]
BRONZE_LINEAGE = StructType(
    [
        *RAW_LINE,
        StructField("_source_file", StringType(), False),
        StructField("_batch_id", LongType(), True),
        StructField("_ingested_at", TimestampType(), False),
    ]
)
SILVER_LINEAGE = StructType(
    [
        StructField("_batch_id", LongType(), True),
        StructField("_source_file", StringType(), False),
    ]
)


def spark_type(field_type: str) -> DataType:
    """The Spark type of a scenario field type."""
    return SPARK_TYPES[field_type]


def entity_schema(entity: Entity) -> StructType:
    """The scenario's schema of an entity, as Spark types, in declaration order."""
    return StructType([StructField(name, spark_type(spec.type), True) for name, spec in entity.fields.items()])


def read_schema(entity: Entity) -> StructType:
    """The explicit schema bronze parses with, plus `_corrupt_record`."""
    return StructType([*entity_schema(entity).fields, StructField(CORRUPT_RECORD, StringType(), True)])


def bronze_schema(entity: Entity) -> StructType:
    """Bronze: every line as read (fields + `_corrupt_record`, parsed from `_line`) + the raw
    line (`_raw` bytes, `_line` text) + lineage."""
    return StructType([*read_schema(entity).fields, *BRONZE_LINEAGE.fields])


# Bronze is read whole by silver and filtered only by batch: min/max statistics over the raw
# line and every "as read" field cost about a third of its write time and skip nothing.
BRONZE_PROPERTIES = {"delta.dataSkippingStatsColumns": "_batch_id,_ingested_at"}


def silver_schema(entity: Entity) -> StructType:
    """Silver: the scenario's schema, typed, then lineage (`_batch_id`, `_source_file`)."""
    return StructType([*entity_schema(entity).fields, *SILVER_LINEAGE.fields])


def silver_properties(entity: Entity) -> dict[str, str]:
    """Silver keeps min/max statistics only where reads filter: the key, the time fields (gold
    recomputes a window's cells from a time range of silver) and the landing batch (`verify`).
    Statistics on every field slow silver's writes and skip nothing."""
    times = [name for name, spec in entity.fields.items() if spec.type in ("timestamp", "date") and name != entity.key]
    return {"delta.dataSkippingStatsColumns": ",".join([entity.key, *times, "_batch_id"])}


QUARANTINE_SCHEMA = StructType(
    [
        StructField("_key", StringType(), True),
        StructField("_reasons", ArrayType(StringType(), False), False),
        StructField("_kinds", ArrayType(StringType(), False), False),
        *RAW_LINE,
        StructField("_source_file", StringType(), False),
        StructField("_batch_id", LongType(), True),
        StructField("_ingested_at", TimestampType(), True),
    ]
)

# Quarantine rows are found by key and batch; the raw line and the reason lists skip nothing.
QUARANTINE_PROPERTIES = {"delta.dataSkippingStatsColumns": "_key,_source_file,_batch_id,_ingested_at"}

QUALITY_SCHEMA = StructType(
    [
        StructField("entity", StringType(), False),
        StructField("batch_id", LongType(), True),
        StructField("micro_batch_id", LongType(), False),
        StructField("rule", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("action", StringType(), False),
        StructField("checked", LongType(), False),
        StructField("passed", LongType(), False),
        StructField("failed", LongType(), False),
        # Filled on the `_batch` summary row of each (entity, batch, micro-batch) only.
        StructField("bronze_rows", LongType(), True),
        StructField("silver_rows", LongType(), True),
        StructField("quarantine_rows", LongType(), True),
        StructField("duplicate_rows", LongType(), True),
        StructField("dropped_rows", LongType(), True),
        StructField("score", DoubleType(), True),
        StructField("recorded_at", TimestampType(), False),
    ]
)

METRICS_SCHEMA = StructType(
    [
        StructField("query", StringType(), False),
        StructField("run_id", StringType(), False),
        StructField("batch_id", LongType(), False),
        StructField("timestamp", TimestampType(), False),
        StructField("num_input_rows", LongType(), False),
        StructField("input_rows_per_second", DoubleType(), True),
        StructField("processed_rows_per_second", DoubleType(), True),
        StructField("trigger_ms", LongType(), True),
        StructField("add_batch_ms", LongType(), True),
        StructField("latest_offset_ms", LongType(), True),
    ]
)
