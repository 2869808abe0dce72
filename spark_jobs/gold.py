"""Gold: the scenario's windowed aggregates, maintained by MERGE from silver.

`spark-submit spark_jobs/gold.py --scenario driving --data DIR [--once | --continuous]`

Each micro-batch of new silver rows names the (group, window) cells it touches; those cells are
recomputed from the whole silver table and merged into gold. So a late record corrects its past
window instead of being lost, distinct counts and percentiles stay exact, a replayed batch
writes the same values, and gold is always a recomputation of silver (what `verify` checks).
Sums and averages run in DECIMAL so the result does not depend on row order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from medallion.contracts import gold_expressions
from medallion.contracts.scenario import RANK_COLUMN, GoldTable, Metric, Scenario
from spark_jobs import gold_anomalies, sql_guard, storage
from spark_jobs.config import PipelineConfig
from spark_jobs.expression_cache import built_once
from spark_jobs.lifecycle import GracefulStop, InputWatch

EXACT_DECIMAL = "decimal(38,9)"
GOLD_PROPERTIES = {
    "delta.enableChangeDataFeed": "true",  # export reads only what changed since its last run
}


@dataclass(frozen=True)
class GoldCommit:
    """A micro-batch merged into a gold table: the table and the highest landing batch id in it."""

    table: str
    highest_batch: int


# Called after each gold commit (the latency benchmark times landing -> gold with it, without
# polling the tables).
OnCommit = Callable[[GoldCommit], None]


def window_seconds(gold: GoldTable) -> int:
    assert gold.window is not None  # callers handle lifetime aggregates first
    return int(gold.window.size.total_seconds())


def with_lookups(gold: GoldTable, dimensions: dict[str, DataFrame]) -> Callable[[DataFrame], DataFrame]:
    """Joins the declared dimension columns (e.g. a driver's company) onto silver rows."""

    def transform(df: DataFrame) -> DataFrame:
        for lookup in gold.lookups:
            dim = dimensions[lookup.entity].select(lookup.key, *lookup.columns)
            df = df.join(dim, on=lookup.key, how="left")
        return df

    return transform


def with_window(gold: GoldTable) -> Callable[[DataFrame], DataFrame]:
    """Adds `window_start` / `window_end` of the tumbling event-time window (a lifetime
    aggregate has none: the rows pass unchanged)."""
    if gold.window is None:
        return lambda df: df
    size = f"{window_seconds(gold)} seconds"
    column = gold.window.column

    def transform(df: DataFrame) -> DataFrame:
        window = F.window(F.col(column), size)
        return df.withColumn("window_start", window.start).withColumn("window_end", window.end)

    return transform


_OPERATORS: dict[str, Callable[[Column, Column], Column]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
}


def expression_column(node: gold_expressions.Node) -> Column:
    """A parsed metric expression as a Spark column, node by node (no SQL text involved)."""
    kind = node[0]
    if kind == "column":
        return F.col(str(node[1]))
    if kind == "number":
        return F.lit(node[1])
    if kind == "negate":
        return -expression_column(node[1])
    return _OPERATORS[kind](expression_column(node[1]), expression_column(node[2]))


def metric_column(metric: Metric) -> Column:
    """The aggregate expression of one metric (deterministic whatever the row order)."""
    if metric.expression is not None:
        value = expression_column(gold_expressions.parse(metric.expression))
    else:
        value = F.col(metric.column) if metric.column else F.lit(1)
    if metric.where:
        value = F.when(F.expr(metric.where), value)
    agg = metric.agg
    if agg == "count":
        result = F.count(value)
    elif agg == "sum":
        result = F.sum(value.cast(EXACT_DECIMAL)).cast("double")
    elif agg == "avg":
        result = F.avg(value.cast(EXACT_DECIMAL)).cast("double")
    elif agg == "min":
        result = F.min(value)
    elif agg == "max":
        result = F.max(value)
    elif agg == "count_distinct":
        result = F.count_distinct(value)
    elif agg == "approx_count_distinct":
        result = F.approx_count_distinct(value)
    elif agg == "percentile":
        result = F.percentile_approx(value, F.lit(metric.percentile), F.lit(100000)).cast("double")
    else:  # pragma: no cover - the model's Literal forbids it
        raise ValueError(agg)
    return result.alias(metric.name)


def aggregate(gold: GoldTable) -> Callable[[DataFrame], DataFrame]:
    """Silver rows (with lookups and window) -> gold rows, in gold's column order (for a table
    of anomaly flags, one row per reading and sensor: `gold_anomalies`)."""
    if gold.anomalies is not None:
        return gold_anomalies.flag_readings(gold)

    def transform(df: DataFrame) -> DataFrame:
        keys = [*gold.group_by, *(("window_start", "window_end") if gold.window is not None else ())]
        columns = tuple(df.columns)

        def build() -> list[Column]:
            sql_guard.check_gold_table(df.sparkSession, gold, columns)  # before any `where` becomes a Column
            return [metric_column(m) for m in gold.metrics]

        metrics = built_once("gold_metrics", gold, build, columns)
        rows = df.groupBy(*keys).agg(*metrics).select(*keys, *[m.name for m in gold.metrics])
        return rows.transform(top_n(gold)) if gold.top is not None else rows

    return transform


def top_n(gold: GoldTable) -> Callable[[DataFrame], DataFrame]:
    """Keep the first `top.n` groups of each (partition, window) by `top.by`, ranked 1..n (ties
    go to the smaller group keys, so the result does not depend on row order)."""
    top = gold.top
    assert top is not None
    partition = [*top.per, *(["window_start"] if gold.window is not None else [])]
    value = F.col(top.by).desc_nulls_last() if top.descending else F.col(top.by).asc_nulls_last()
    order = Window.partitionBy(*partition).orderBy(value, *[F.col(c).asc_nulls_first() for c in gold.group_by])
    keys = [*gold.group_by, *(("window_start", "window_end") if gold.window is not None else ())]

    def transform(df: DataFrame) -> DataFrame:
        ranked = df.withColumn(RANK_COLUMN, F.row_number().over(order)).where(F.col(RANK_COLUMN) <= top.n)
        return ranked.select(*keys, RANK_COLUMN, *[m.name for m in gold.metrics])

    return transform


def recompute(gold: GoldTable, silver: DataFrame, dimensions: dict[str, DataFrame]) -> DataFrame:
    """The whole gold table from silver: what `verify` compares gold with."""
    return silver.transform(with_lookups(gold, dimensions)).transform(with_window(gold)).transform(aggregate(gold))


def touched_windows(gold: GoldTable, changed: DataFrame, dimensions: dict[str, DataFrame]) -> Row:
    """In one Spark job: how many changed rows (`rows`), their highest landing batch (`batch`),
    and the first and last window they fall in (`lo`, `hi`, and `lo_us`, `hi_us` in
    microseconds since the epoch; all None without rows or event times)."""
    if gold.window is None:  # a lifetime aggregate: no windows to bound
        counted = changed.agg(F.count(F.lit(1)).alias("rows"), F.max("_batch_id").alias("batch")).first()
        assert counted is not None
        return Row(rows=counted["rows"], batch=counted["batch"], lo=None, hi=None, lo_us=None, hi_us=None)
    if gold.window.column not in changed.columns:  # the window's column is a lookup column
        changed = changed.transform(with_lookups(gold, dimensions))
    start = F.col("window_start")
    row = changed.transform(with_window(gold)).agg(
        F.count(F.lit(1)).alias("rows"), F.max("_batch_id").alias("batch"),
        F.min(start).alias("lo"), F.max(start).alias("hi"),
        F.unix_micros(F.min(start)).alias("lo_us"), F.unix_micros(F.max(start)).alias("hi_us"),
    ).first()
    assert row is not None  # a global aggregate has one row
    return row


def recompute_cells(
    gold: GoldTable, changed: DataFrame, silver: DataFrame, dimensions: dict[str, DataFrame], bounds: Row | None = None
) -> DataFrame:
    """Gold rows of every (group, window) cell that the changed silver rows fall in (`bounds`:
    their `touched_windows`, computed here when not given); with `top`, of every touched
    (partition, window); for a lifetime aggregate, of every touched group over all of silver."""
    prepare = lambda df: df.transform(with_lookups(gold, dimensions)).transform(with_window(gold))  # noqa: E731
    cells = prepare(changed).select(*gold.cell_columns).distinct()
    if gold.window is None:
        return prepare(silver).join(F.broadcast(cells), gold.cell_columns, "left_semi").transform(aggregate(gold))
    if bounds is None:
        bounds = cells.agg(F.min("window_start").alias("lo"), F.max("window_start").alias("hi")).first()
    if bounds is None or bounds["lo"] is None:
        return silver.limit(0).transform(prepare).transform(aggregate(gold))
    column = F.col(gold.window.column)
    span = F.expr(f"INTERVAL {window_seconds(gold)} SECONDS")
    # Prune silver to the touched time range first (Delta skips files by min/max statistics).
    candidates = silver.where((column >= F.lit(bounds["lo"])) & (column < F.lit(bounds["hi"]) + span))
    touched = prepare(candidates).join(F.broadcast(cells), gold.cell_columns, "left_semi")
    return touched.transform(aggregate(gold))


def only_new_windows(path: str, bounds: Row | None) -> bool:
    """Whether no row of the gold table can have a window_start in [bounds.lo, bounds.hi], by
    the min/max statistics of its files (False when they are not known)."""
    if bounds is None or bounds["lo_us"] is None:
        return False
    ranges = storage.timestamp_ranges(path, "window_start")
    return ranges is not None and all(high < bounds["lo_us"] or low > bounds["hi_us"] for low, high in ranges)


def merge_into_gold(spark: SparkSession, path: str, rows: DataFrame, gold: GoldTable, bounds: Row | None = None) -> None:
    """Upsert recomputed cells by (group keys, window_start); `bounds` (`touched_windows`) lets
    cells of windows the table holds no row of be appended."""
    storage.ensure_table(spark, path, rows.schema, GOLD_PROPERTIES)
    if storage.data_file_count(spark, path) == 0 or only_new_windows(path, bounds):
        # A MERGE that can only insert (into an empty table, or cells of windows no file
        # holds) costs a join with nothing, 1-2 s; an append writes the same rows and change
        # feed (inserts). A replay of this micro-batch finds the rows in and merges, which
        # changes nothing.
        storage.append(rows, path)
        return
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in gold.key_columns)
    if gold.top is not None:
        merge_ranked(spark, path, rows, gold, condition)
        return
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def merge_ranked(spark: SparkSession, path: str, rows: DataFrame, gold: GoldTable, condition: str) -> None:
    """MERGE the recomputed top-n rows of the touched partitions and, in the same commit, delete
    the rows of those partitions that fell out of the top n (one atomic Delta commit)."""
    drop = "_medallion_drop"
    partitions = rows.select(*gold.cell_columns).distinct()
    current = spark.read.format("delta").load(path)
    # `<=>` joins: a group key may be NULL (a lookup that found nothing).
    touched = current.join(partitions, [current[c].eqNullSafe(partitions[c]) for c in gold.cell_columns], "left_semi")
    gone = touched.join(rows, [touched[k].eqNullSafe(rows[k]) for k in gold.key_columns], "left_anti")
    source = rows.withColumn(drop, F.lit(False)).unionByName(gone.withColumn(drop, F.lit(True)))
    values: dict[str, str | Column] = {c: f"s.`{c}`" for c in rows.columns}
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), condition)
        .whenMatchedDelete(condition=f"s.{drop}")
        .whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(condition=f"NOT s.{drop}", values=values)
        .execute()
    )


def load_dimensions(spark: SparkSession, cfg: PipelineConfig, gold: GoldTable) -> dict[str, DataFrame]:
    """The silver dimension tables a gold table's lookups read (empty ones if not yet written)."""
    from spark_jobs.schemas import silver_schema

    dimensions = {}
    for lookup in gold.lookups:
        table = storage.read_delta(spark, cfg.table("silver", lookup.entity))
        if table is None:
            table = spark.createDataFrame([], silver_schema(cfg.scenario.entities[lookup.entity]))
        dimensions[lookup.entity] = table
    return dimensions


def update(
    spark: SparkSession, cfg: PipelineConfig, gold: GoldTable, changed: DataFrame, on_commit: OnCommit | None = None
) -> None:
    """One micro-batch of new silver rows -> recompute and merge the cells they touch."""
    changed = changed.persist()
    try:
        dimensions = load_dimensions(spark, cfg, gold)
        bounds = touched_windows(gold, changed, dimensions)  # the job that also caches `changed`
        if bounds["rows"] == 0:
            return
        silver = spark.read.format("delta").load(cfg.table("silver", gold.source))
        # MERGE reads its source twice (to find the touched files, then to write): recompute
        # the cells once. The rows are few: one per touched (group, window) cell.
        rows = recompute_cells(gold, changed, silver, dimensions, bounds).persist()
        try:
            merge_into_gold(spark, cfg.table("gold", gold.name), rows, gold, bounds)
        finally:
            rows.unpersist()
        if on_commit is not None:
            on_commit(GoldCommit(gold.name, int(bounds["batch"])))
        storage.compact_small_files(spark, [cfg.table("gold", gold.name)])  # this query is its only writer
    finally:
        changed.unpersist()


def ensure_gold_table(spark: SparkSession, cfg: PipelineConfig, gold: GoldTable) -> None:
    """Create a gold table unless it exists: from the start (empty if no rows arrive), for
    export and verify."""
    from spark_jobs.schemas import silver_schema

    empty = spark.createDataFrame([], silver_schema(cfg.scenario.entities[gold.source]))
    storage.ensure_table(spark, cfg.table("gold", gold.name), recompute(gold, empty, load_dimensions(spark, cfg, gold)).schema, GOLD_PROPERTIES)


def start(spark: SparkSession, cfg: PipelineConfig, gold: GoldTable, on_commit: OnCommit | None = None) -> StreamingQuery:
    """Start the gold stream of one aggregate (reading its silver source as a stream)."""
    from spark_jobs.silver import ensure_silver_table

    source = ensure_silver_table(spark, cfg, gold.source)
    ensure_gold_table(spark, cfg, gold)
    checkpoint = cfg.checkpoint("gold", gold.name)

    def each_batch(batch_df: DataFrame, _micro_batch_id: int) -> None:
        update(spark, cfg, gold, batch_df, on_commit)

    return storage.start_batches(storage.read_delta_stream(spark, source, cfg.scenario.pipeline.max_files_per_trigger), f"gold_{gold.name}", checkpoint, each_batch)


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    stop: GracefulStop | None = None,
    watch: InputWatch | None = None,
    on_commit: OnCommit | None = None,
    tables: list[GoldTable] | None = None,
) -> None:
    """Maintain the gold tables (default: every one of the scenario) side by side, each from
    its silver source's stream; `on_commit` after each merge."""
    from spark_jobs.lifecycle import STOP, Planned, run_queries

    chosen = cfg.scenario.gold if tables is None else tables
    stage = [Planned(f"gold/{g.name}", partial(start, spark, cfg, g, on_commit), partial(storage.table_state, cfg.table("silver", g.source)))
             for g in chosen]
    if stage:
        run_queries([stage], stop or STOP, watch)


def fed_by_silver(scenario: Scenario) -> list[GoldTable]:
    """The gold tables silver's micro-batches can update themselves (`--layers` with both):
    those whose lookups read only entities of earlier silver stages than their source, which
    are complete when the source's micro-batch runs, as they are for a gold query run after
    all of silver."""
    stage_of = {name: i for i, stage in enumerate(scenario.processing_stages) for name in stage}
    return [g for g in scenario.gold if all(stage_of[lookup.entity] < stage_of[g.source] for lookup in g.lookups)]


def main() -> None:
    """spark-submit entry point."""
    from spark_jobs.lifecycle import job_main

    job_main("gold", run)


if __name__ == "__main__":
    main()
