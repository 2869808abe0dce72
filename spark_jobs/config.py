"""PipelineConfig: the typed object every job receives (scenario + data root + run options).

Loaded once at the entry point (CLI, spark-submit `main()`, notebook) and passed down.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario

ALL_LAYERS = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a job needs to know; paths come from the DataRoot contract."""

    scenario: Scenario
    data: DataRoot
    once: bool = True
    layers: tuple[str, ...] = ALL_LAYERS
    targets: tuple[str, ...] = ("postgres", "mysql")
    master: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def table(self, layer: str, name: str) -> str:
        return str(self.data.table(layer, name))

    def checkpoint(self, job: str, name: str) -> str:
        return str(self.data.checkpoint(job, name))

    @property
    def quality_table(self) -> str:
        return str(self.data.quality)

    @property
    def metrics_table(self) -> str:
        return str(self.data.metrics)


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every `spark_jobs/<job>.py` accepts under spark-submit."""
    parser.add_argument("--scenario", required=True, help="scenario NAME or path to a YAML file")
    parser.add_argument("--profile", default=None, help="profile overlay from the scenario file")
    parser.add_argument("--data", required=True, type=Path, help="data root (docs/design.md §3.4)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", default=True, help="process what is there, then stop (default)")
    mode.add_argument("--continuous", action="store_true", help="keep running on a processing-time trigger")
    parser.add_argument("--master", default=None, help="Spark master URL (default local[*])")


def config_from_args(args: argparse.Namespace, **extra: object) -> PipelineConfig:
    """Build the PipelineConfig from parsed job arguments."""
    scenario = load_scenario(args.scenario, profile=getattr(args, "profile", None))
    return PipelineConfig(
        scenario=scenario,
        data=DataRoot(args.data),
        once=not getattr(args, "continuous", False),
        master=getattr(args, "master", None),
        **extra,  # type: ignore[arg-type]
    )
