"""The one place a SparkSession is built: Delta, the local jars, UTC, small shuffles.

Every job, the CLI, the tests and the notebooks call `build_session`; nothing creates a
session at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.options import spark_settings
from spark_jobs.jars import jar_paths

DEFAULT_MASTER = "local[*]"
LOG_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"
# The JIT skips methods over 8,000 bytes of bytecode by default; silver's whole-stage generated
# code (dozens of rules per line) is larger and would run interpreted.
JVM_OPTIONS = "-Duser.timezone=UTC -XX:-DontCompileHugeMethods"


@dataclass(frozen=True)
class SessionOptions:
    """What varies between a CLI run, a test run and a cluster run."""

    app_name: str = "medallion"
    master: str | None = None
    shuffle_partitions: int = 4
    ui: bool = False
    driver_memory: str = "2g"
    log_level: str = "ERROR"
    # Event logs of the application (a history server replays them), e.g. DATA/lake/_spark_events.
    event_log_dir: str | None = None
    # The user's `--conf KEY=VALUE` settings: they win over the project's defaults and over
    # what spark-submit was given.
    extra: dict[str, str] = field(default_factory=dict)


def options_from_args(app_name: str, args: object, **fields: object) -> SessionOptions:
    """The SessionOptions of a command from its `--master`, `--conf` and `--log-level` (`args`: an
    argparse Namespace, or a typed object with those attributes such as `demo.DemoArgs`)."""
    return SessionOptions(
        app_name=app_name, master=getattr(args, "master", None), extra=spark_settings(args),
        log_level=getattr(args, "log_level", None) or SessionOptions.log_level, **fields,  # type: ignore[arg-type]
    )


def session_config(
    options: SessionOptions, with_jars: bool = True, preset: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The Spark configuration medallion runs with, as plain strings (also used by the cluster).

    `preset` is what the JVM was already given (spark-submit's `--conf`, spark-defaults.conf):
    a project default for a key it holds is left out, so the operator's value stays. The user's
    own settings (`options.extra`) are always included.
    """
    config = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"{JVM_OPTIONS} -Dlog4j2.configurationFile=file:{LOG_CONFIG}",
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
        "spark.sql.shuffle.partitions": str(options.shuffle_partitions),
        "spark.default.parallelism": str(max(2, options.shuffle_partitions)),
        "spark.ui.enabled": str(options.ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": options.driver_memory,
        # Delta rebuilds table state with 50 partitions by default: far too many on a laptop.
        "spark.databricks.delta.snapshotPartitions": str(max(2, options.shuffle_partitions)),
        # VACUUM lists and joins a table's files in this many tasks (Spark's default: 10,000),
        # whatever the table's size: about 170,000 tasks per VACUUM of a one-file table.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(max(2, options.shuffle_partitions)),
        # Small tables, many commits: their writers compact them (spark_jobs.storage.compact_small_files),
        # not auto-compaction, whose hook costs about a second on the first write to each table
        # in a process. No optimized writes either: with few cores a micro-batch already arrives
        # in a few partitions, and the extra shuffle would only add time.
        "spark.databricks.delta.autoCompact.enabled": "false",
        "spark.databricks.delta.optimizeWrite.enabled": "false",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    if options.ui:
        # Spark's own metrics in Prometheus text beside the UI: /metrics/prometheus (driver) and
        # /metrics/executors/prometheus.
        config["spark.ui.prometheus.enabled"] = "true"
        # Any web page the operator opens can send requests to the UI's port: no kill links.
        config["spark.ui.killEnabled"] = "false"
        config["spark.metrics.conf.*.sink.prometheusServlet.class"] = "org.apache.spark.metrics.sink.PrometheusServlet"
        config["spark.metrics.conf.*.sink.prometheusServlet.path"] = "/metrics/prometheus"
    if options.event_log_dir:
        # Rolled and compressed: a continuous run adds events for every micro-batch.
        config["spark.eventLog.enabled"] = "true"
        config["spark.eventLog.dir"] = options.event_log_dir
        config["spark.eventLog.rolling.enabled"] = "true"
        config["spark.eventLog.rolling.maxFileSize"] = "64m"
        config["spark.eventLog.compress"] = "true"
    if with_jars:
        config["spark.jars"] = ",".join(str(p) for p in jar_paths())
    config = {key: value for key, value in config.items() if key not in (preset or {})}
    config.update(options.extra)
    return config


def submitted_config() -> dict[str, str]:
    """The settings the running JVM already holds, when spark-submit launched this driver.

    spark-submit starts the JVM first (with its `--conf` values as system properties) and hands
    Python the gateway port; a SparkConf loaded through that gateway reads them back. Outside
    spark-submit there is no JVM yet and nothing is preset.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's gateway; starts nothing new
    return dict(SparkConf(loadDefaults=True).getAll())


def spark_event_dir(data: DataRoot) -> str:
    """The event-log folder under a data root as a URI, made if missing (Spark refuses to start
    when it does not exist)."""
    folder = data.spark_events
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve().as_uri()


def resolve_master(master: str | None) -> str:
    """--master flag, else $MEDALLION_SPARK_MASTER, else local[*] (spark-submit sets its own)."""
    return master or os.environ.get("MEDALLION_SPARK_MASTER") or DEFAULT_MASTER


def build_session(options: SessionOptions | None = None) -> SparkSession:
    """Create (or reuse) the SparkSession with medallion's configuration.

    Under `spark-submit` the master comes from the command line, so it is only set here when
    no master was configured already.
    """
    options = options or SessionOptions()
    builder = SparkSession.builder.appName(options.app_name)
    # spark-submit starts the JVM first and hands the Python driver its gateway port.
    launched_by_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if not launched_by_submit or options.master:
        builder = builder.master(resolve_master(options.master))
    # Under spark-submit the jars come from `--jars "$(medallion jars --csv)"`, and the project
    # may run from a --py-files zip that has no .jars folder beside it. The builder's settings
    # override the JVM's, so a default spark-submit was given a value for is not passed at all.
    preset = submitted_config()
    for key, value in session_config(options, with_jars=not launched_by_submit, preset=preset).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(options.log_level)
    url = spark.sparkContext.uiWebUrl
    if url and options.ui:
        print(f"Spark UI: {url}", flush=True)
    return spark
