"""The typed configs the Spark stages receive: `PipelineConfig` (bronze, silver, gold) and
`ExportConfig` (gold -> databases). How Spark itself runs is `spark_jobs.session.SessionOptions`.

Each is built by one function (`pipeline_config`, `export_config`) at the entry point (CLI,
spark-submit `main()`, demo, notebook) and passed down; paths come from the DataRoot contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medallion.contracts.errors import ConfigError
from medallion.contracts.layout import DataRoot
from medallion.contracts.options import EXPORT_KINDS, ExportKind
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario

ALL_LAYERS = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline runs: the scenario, on which data root, once or continuously, which layers."""

    scenario: Scenario
    data: DataRoot
    once: bool = True
    layers: tuple[str, ...] = ALL_LAYERS

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


@dataclass(frozen=True)
class ExportConfig:
    """What the export sends: the scenario's export tables of a data root, into which targets."""

    scenario: Scenario
    data: DataRoot
    targets: tuple[ExportKind, ...] = EXPORT_KINDS
    write_mode: Literal["batch", "row"] = "batch"  # see medallion.contracts.options.WRITE_MODES

    def table(self, layer: str, name: str) -> str:
        return str(self.data.table(layer, name))


def _scenario(scenario: Scenario | str | Path, profile: str | None) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario, profile=profile)


def _data_root(data: DataRoot | Path | str) -> DataRoot:
    return data if isinstance(data, DataRoot) else DataRoot(Path(data))


def pipeline_config(
    scenario: Scenario | str | Path,
    data: DataRoot | Path | str,
    *,
    profile: str | None = None,
    once: bool = True,
    layers: tuple[str, ...] = ALL_LAYERS,
) -> PipelineConfig:
    """The PipelineConfig of a scenario (a loaded one, or a NAME or YAML path with `profile`)
    on a data root."""
    return PipelineConfig(scenario=_scenario(scenario, profile), data=_data_root(data), once=once, layers=layers)


def export_config(
    scenario: Scenario | str | Path,
    data: DataRoot | Path | str,
    *,
    profile: str | None = None,
    targets: tuple[ExportKind, ...] = EXPORT_KINDS,
    write_mode: Literal["batch", "row"] = "batch",
) -> ExportConfig:
    """The ExportConfig of a scenario (a loaded one, or a NAME or YAML path with `profile`)
    on a data root."""
    return ExportConfig(scenario=_scenario(scenario, profile), data=_data_root(data), targets=targets, write_mode=write_mode)


def parse_layers(text: str) -> tuple[str, ...]:
    """`bronze,silver` -> ('bronze', 'silver') in pipeline order; ConfigError on unknown names."""
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in ALL_LAYERS]
    if unknown or not wanted:
        raise ConfigError("--layers", [f"unknown layer(s) {unknown or text!r}; use a subset of {','.join(ALL_LAYERS)}"])
    return tuple(layer for layer in ALL_LAYERS if layer in wanted)
