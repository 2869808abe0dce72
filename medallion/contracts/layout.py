"""The data root contract (docs/design.md §3.4): every path under `--data DIR` is built here.

Pure Python, shared by the generator (no Spark) and the Spark jobs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from medallion.contracts.errors import UnsafePathError

LAYERS = ("bronze", "silver", "quarantine", "gold")
_LANDING_NAME = re.compile(r"^(?P<entity>.+)-b(?P<batch>\d{6})-p(?P<part>\d{2})\.jsonl$")


@dataclass(frozen=True)
class DataRoot:
    """Paths of one data root; `root` is made absolute so Spark and subprocesses agree."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    # landing zone and ledger
    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    def landing_dir(self, entity: str) -> Path:
        return self.landing / entity

    def landing_file(self, entity: str, batch_id: int, part: int) -> Path:
        return self.landing_dir(entity) / landing_file_name(entity, batch_id, part)

    def manifest_dir(self, entity: str) -> Path:
        return self.manifests / entity

    def manifest_file(self, entity: str, batch_id: int) -> Path:
        return self.manifest_dir(entity) / f"b{batch_id:06d}.json"

    @property
    def run_manifest(self) -> Path:
        return self.manifests / "run.json"

    # lake
    @property
    def lake(self) -> Path:
        return self.root / "lake"

    def table(self, layer: str, name: str) -> Path:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {', '.join(LAYERS)}")
        return self.lake / layer / name

    @property
    def quality(self) -> Path:
        return self.lake / "quality"

    @property
    def metrics(self) -> Path:
        return self.lake / "_metrics"

    @property
    def spark_events(self) -> Path:
        """Spark's event logs of the pipeline and demo runs (a history server reads them)."""
        return self.lake / "_spark_events"

    def checkpoint(self, job: str, name: str) -> Path:
        return self.lake / "_checkpoints" / job / name

    @property
    def reprocess_marker(self) -> Path:
        """Present from the start of a `medallion reprocess` until its rebuild finished."""
        return self.lake / "_reprocess.json"

    @property
    def reprocess_trash(self) -> Path:
        """Where reprocess moves a table or checkpoint (one rename) before deleting it."""
        return self.lake / "_reprocess_trash"

    def is_inside(self, path: Path | str) -> bool:
        """Whether the real path of `path` (every symlink followed) lies inside the data root."""
        return Path(os.path.realpath(path)).is_relative_to(self.root)

    def resolve_inside(self, path: Path | str) -> Path:
        """The real path of `path`; refuses one whose real path leaves the data root."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            raise UnsafePathError(
                f"{path} leads out of the data root {self.root} (to {real}); "
                "medallion reads and deletes only inside it: replace the link with a real folder or file"
            )
        return real

    def relative(self, path: Path) -> str:
        """Path relative to the data root, with forward slashes, as manifests record it."""
        return Path(path).resolve().relative_to(self.root).as_posix()


def landing_file_name(entity: str, batch_id: int, part: int) -> str:
    """`<entity>-b<batch:06d>-p<part:02d>.jsonl`, the name docs/design.md §3.4 fixes."""
    return f"{entity}-b{batch_id:06d}-p{part:02d}.jsonl"


def parse_landing_name(name: str) -> tuple[str, int, int] | None:
    """(entity, batch_id, part) of a landing file name, or None if it is not one."""
    match = _LANDING_NAME.match(Path(name).name)
    if match is None:
        return None
    return match["entity"], int(match["batch"]), int(match["part"])
