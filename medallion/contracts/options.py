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


def add_scenario_options(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    """`--scenario`, `--profile`, `--data`: which scenario runs on which data root."""
    parser.add_argument("--scenario", required=True, help="scenario NAME (configs/scenarios/NAME.yaml) or a YAML path")
    parser.add_argument("--profile", default=None, help="profile overlay defined in the scenario (e.g. small, scaling)")
    parser.add_argument("--data", required=data_required, type=Path, help="data root: landing/, manifests/, lake/")


def add_master_option(parser: argparse.ArgumentParser) -> None:
    """`--master`: the Spark master URL of a command that starts Spark."""
    parser.add_argument("--master", default=None, help="Spark master URL (default: $MEDALLION_SPARK_MASTER or local[*])")


def add_mode_options(parser: argparse.ArgumentParser) -> None:
    """`--once` (default) or `--continuous`: read the choice back as `not args.continuous`."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="process everything landed, then stop (default)")
    mode.add_argument("--continuous", action="store_true", help="keep running on the scenario's trigger interval")


def add_target_option(parser: argparse.ArgumentParser) -> None:
    """`--target postgres|mysql|all`: read it back with `export_kinds`."""
    parser.add_argument("--target", choices=(*EXPORT_KINDS, ALL_TARGETS), default=ALL_TARGETS)


def export_kinds(target: str) -> tuple[ExportKind, ...]:
    """`all` -> every kind; otherwise the one named (argparse has checked it is one)."""
    return EXPORT_KINDS if target == ALL_TARGETS else tuple(k for k in EXPORT_KINDS if k == target)
