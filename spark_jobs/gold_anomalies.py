"""Gold anomaly flags: silver readings -> one row per (reading, sensor), flagged `spike`,
`stuck` or not at all (docs/design.md §2.5, "Anomaly flags").

Each reading is judged only against the readings of its own (group, window) cell, e.g. one
engine's readings of six hours. So a flag is a pure function of the cell's silver rows, and
the table is maintained exactly like an aggregate: the cells a micro-batch touches are
recomputed from the whole silver table and MERGEd (a late reading re-judges its cell), a
replay writes the same rows, and the table always equals `recompute(silver)`, which `verify`
checks. Per cell and sensor, in (event time, key) order:

- `stuck`: the value repeats at least `stuck_run` times in a row (a frozen sensor; honest noise
  repeats a value to the last decimal that often very rarely);
- `spike`: otherwise, a robust z-score `(value - median) / (1.4826 * MAD)` of at least
  `z_threshold` in absolute value (median and median absolute deviation are not dragged by
  the spike itself, as a mean and standard deviation would be); with a MAD of 0 (a flat
  cell) any value off the median. Cells with fewer than `min_readings` values flag no spikes.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from medallion.contracts.scenario import GoldTable

MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution is 0.6745 sigma
SPIKE, STUCK = "spike", "stuck"


def columns(gold: GoldTable) -> list[str]:
    """The flags table's columns, in order."""
    return [*gold.group_by, "window_start", "window_end", "reading_key", gold.anomaly_window.column, "sensor", "value",
            "median", "mad", "zscore", "run_length", "readings", "flag"]


def flag_readings(gold: GoldTable) -> Callable[[DataFrame], DataFrame]:
    """Silver rows (with lookups and window) of whole cells -> flag rows, in the table's order."""
    flags = gold.anomalies
    assert flags is not None
    time = gold.anomaly_window.column

    def transform(df: DataFrame) -> DataFrame:
        readings = F.explode(F.array(*[
            F.struct(F.lit(sensor).alias("sensor"), F.col(sensor).cast("double").alias("value")) for sensor in flags.sensors
        ])).alias("reading")
        long = (
            df.select(*gold.group_by, "window_start", "window_end", F.col(flags.key).cast("string").alias("reading_key"), time, readings)
            .select("*", "reading.sensor", "reading.value").drop("reading")
            .where(F.col("value").isNotNull())
        )
        cell = Window.partitionBy(*gold.group_by, "window_start", "sensor")
        ordered = cell.orderBy(time, "reading_key")
        long = long.withColumn("median", F.percentile("value", F.lit(0.5)).over(cell)).withColumn("readings", F.count(F.lit(1)).over(cell))
        long = long.withColumn("mad", F.percentile(F.abs(F.col("value") - F.col("median")), F.lit(0.5)).over(cell))
        long = long.withColumn(
            "zscore", F.when(F.col("mad") > 0, (F.col("value") - F.col("median")) / (F.col("mad") * F.lit(MAD_TO_SIGMA)))
        )
        changed = F.coalesce(F.lag("value").over(ordered) != F.col("value"), F.lit(True))
        long = long.withColumn("_run", F.sum(changed.cast("long")).over(ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
        long = long.withColumn("run_length", F.count(F.lit(1)).over(Window.partitionBy(*gold.group_by, "window_start", "sensor", "_run")))
        off = (F.abs(F.col("zscore")) >= F.lit(flags.z_threshold)) | ((F.col("mad") == 0) & (F.col("value") != F.col("median")))
        flag = (
            F.when(F.col("run_length") >= F.lit(flags.stuck_run), F.lit(STUCK))
            .when((F.col("readings") >= F.lit(flags.min_readings)) & F.coalesce(off, F.lit(False)), F.lit(SPIKE))
        )
        return long.withColumn("flag", flag).select(*columns(gold))

    return transform
