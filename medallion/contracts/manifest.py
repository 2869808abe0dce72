"""Batch manifests and the defect ledger (docs/design.md §3.5): the generator's record of what it wrote.

Written atomically before a batch's files are renamed into the landing zone; read back by
`medallion verify`, the tests and the generator itself when it resumes after a restart.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medallion.contracts.errors import GeneratorError
from medallion.contracts.layout import DataRoot


class ManifestError(GeneratorError):
    """A manifest cannot be read (truncated, wrong types) or belongs to another run."""


class _Record(BaseModel):
    # Extra fields are welcome in manifests (docs/design.md §3.5), so readers must not reject them.
    model_config = ConfigDict(extra="allow")


class FileEntry(_Record):
    """One landing file of a batch."""

    path: str
    lines: int
    sha256: str


class DefectEntry(_Record):
    """One defective line. `line` is 1-based in `file`; `key` is absent when the line has none."""

    file: str
    line: int
    kind: str
    key: str | None = None
    field: str | None = None
    change: Literal["add", "rename", "retype"] | None = None
    repeats: str | None = None


class AnomalyEntry(_Record):
    """One sensor anomaly (kind `anomaly`, fate keep: valid data) in one batch: the readings of
    unit `engine` whose `sensor` field it changes were recorded in [start, end] (instants as
    in the records). A spike names its reading (`key`) and the value it wrote; `magnitude` is
    the change it made (spike, drift at `end`); a stuck sensor's `value` is the one it repeats.
    An anomaly that spans batches has one entry per batch, all with the same `id`."""

    kind: Literal["anomaly"] = "anomaly"
    subtype: Literal["spike", "stuck", "drift"]
    id: str
    engine: str
    sensor: str
    start: str
    end: str
    readings: int = 1
    key: str | None = None
    value: float | None = None
    magnitude: float | None = None
    source: Literal["generator", "api"] = "generator"
    fate: Literal["keep"] = "keep"


class BatchManifest(_Record):
    """Per entity per batch: files, line counts, the defect counts and the full defect ledger."""

    scenario: str
    entity: str
    batch_id: int
    seed: int
    config_sha256: str
    interval_start: str
    interval_end: str
    files: list[FileEntry] = Field(default_factory=list)
    lines: int = 0
    clean_records: int = 0
    defect_counts: dict[str, int] = Field(default_factory=dict)
    defects: list[DefectEntry] = Field(default_factory=list)
    # Sensor anomalies (valid data, fate keep): present only for entities with sensor faults.
    anomalies: list[AnomalyEntry] = Field(default_factory=list)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a `.`-prefixed temporary name in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=1, sort_keys=False, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(data: DataRoot, manifest: BatchManifest) -> Path:
    """Atomically write one batch manifest where docs/design.md §3.4 puts it."""
    path = data.manifest_file(manifest.entity, manifest.batch_id)
    write_json_atomic(path, manifest.model_dump(mode="json", exclude_none=True))
    return path


def read_manifest(path: Path) -> BatchManifest:
    """One manifest, validated.

    Raises:
        ManifestError: the file is unreadable, not JSON, or its fields have the wrong types;
            the message names the file, the first problem and the fix.
    """
    fix = "restore it, or delete it to have `medallion generate` (same options) write that batch again"
    try:
        return BatchManifest.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path} ({exc.strerror}); {fix}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(f"manifest {path} is damaged: {where}: {first['msg']}{more}; {fix}") from None


def check_manifest(path: Path, expected: dict[str, Any]) -> BatchManifest:
    """Read a manifest and check that it belongs to this run (scenario, seed, entity, batch...).

    Raises:
        ManifestError: damaged, or a field differs from `expected`; names the file and the fix.
    """
    manifest = read_manifest(path)
    for key, value in expected.items():
        found = getattr(manifest, key)
        if found != value:
            raise ManifestError(
                f"manifest {path} belongs to another run ({key}={found!r}, this run has {value!r}); "
                "delete it to have `medallion generate` write that batch again, or use a new --data directory"
            )
    return manifest


def read_manifests(data: DataRoot, entity: str) -> list[BatchManifest]:
    """Every manifest of an entity, in batch order (temporary `.` files are skipped)."""
    folder = data.manifest_dir(entity)
    if not folder.is_dir():
        return []
    paths = sorted(p for p in folder.glob("b*.json") if not p.name.startswith("."))
    return [read_manifest(p) for p in paths]
