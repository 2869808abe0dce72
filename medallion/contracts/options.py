"""The command-line options `medallion` and the spark-submit jobs share, defined once
(docs/design.md §3.1), and the export target kinds they name.

Only the definitions of the options live here; each entry point turns its parsed options into
the typed arguments of its stage in one place (medallion/cli.py, the jobs' `main()`).
Pure argparse: no Spark, no database driver.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

ExportKind = Literal["postgres", "mysql"]
# The database kinds `export` writes to, in the order it writes them.
EXPORT_KINDS: tuple[ExportKind, ...] = ("postgres", "mysql")
ALL_TARGETS = "all"


def profile_names(text: str) -> str | None:
    """argparse type of `--profile`: an empty value means no profile, as if the option were not
    given (so `--profile "${VAR:-}"` in a compose file keeps the unset default byte for byte)."""
    return text.strip() or None


def add_scenario_options(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    """`--scenario`, `--profile`, `--data`: which scenario runs on which data root."""
    parser.add_argument("--scenario", required=True, help="scenario NAME (configs/scenarios/NAME.yaml) or a YAML path")
    parser.add_argument("--profile", type=profile_names, default=None,
                        help="profile overlay defined in the scenario (e.g. small, scaling); several comma-separated "
                             "are applied left to right, a later one wins (small,cadence_5s); empty: none")
    parser.add_argument("--data", required=data_required, type=Path, help="data root: landing/, manifests/, lake/")


# The levels SparkContext.setLogLevel accepts.
SPARK_LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")


def spark_setting(text: str) -> tuple[str, str]:
    """argparse type of `--conf`: KEY=VALUE -> (KEY, VALUE); the value may be empty or hold `=`."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE; write e.g. --conf spark.sql.shuffle.partitions=8"
        )
    return key, value


def add_spark_options(parser: argparse.ArgumentParser, master: bool = True) -> None:
    """`--master`, `--conf KEY=VALUE` (repeatable), `--log-level`: how a command that starts
    Spark runs it. Read them back with `spark_settings`."""
    if master:
        parser.add_argument("--master", default=None, help="Spark master URL (default: $MEDALLION_SPARK_MASTER or local[*])")
    parser.add_argument(
        "--conf", action="append", type=spark_setting, default=[], metavar="KEY=VALUE",
        help="a Spark setting, repeatable; wins over medallion's defaults and over spark-submit's --conf",
    )
    parser.add_argument(
        "--log-level", choices=SPARK_LOG_LEVELS, default=None, type=str.upper,
        help="Spark's log level (default ERROR)",
    )


def add_master_option(parser: argparse.ArgumentParser) -> None:
    """The Spark options of a command that starts Spark (`add_spark_options` with --master)."""
    add_spark_options(parser)


def spark_settings(args: object) -> dict[str, str]:
    """The `--conf` settings as a mapping; a key given twice keeps its last value, as in spark-submit."""
    return dict(getattr(args, "conf", None) or [])


def add_mode_options(parser: argparse.ArgumentParser) -> None:
    """`--once` (default) or `--continuous`: read the choice back as `not args.continuous`."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="process everything landed, then stop (default)")
    mode.add_argument("--continuous", action="store_true", help="keep running on the scenario's trigger interval")


def add_target_option(parser: argparse.ArgumentParser) -> None:
    """`--target postgres|mysql|all`: read it back with `export_kinds`."""
    parser.add_argument(
        "--target", choices=(*EXPORT_KINDS, ALL_TARGETS), default=ALL_TARGETS,
        help="which database(s) to write: postgres, mysql or all (default all)",
    )


# How the export writes rows into a target's staging table: `batch` (COPY / multi-row INSERT,
# the default) or `row` (one INSERT, and with it one commit, per row: the way a row-at-a-time
# producer writes, kept to measure against).
WRITE_MODES = ("batch", "row")


def add_write_mode_option(parser: argparse.ArgumentParser) -> None:
    """`--mode batch|row`: how rows reach the staging table; the commit is one transaction either way."""
    parser.add_argument(
        "--mode", choices=WRITE_MODES, default="batch", dest="write_mode",
        help="batch: bulk load (COPY / multi-row INSERT, default); row: one INSERT and commit per row",
    )


def export_kinds(target: str) -> tuple[ExportKind, ...]:
    """`all` -> every kind; otherwise the one named (argparse has checked it is one)."""
    return EXPORT_KINDS if target == ALL_TARGETS else tuple(k for k in EXPORT_KINDS if k == target)
