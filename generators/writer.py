"""The landing writer: batches onto disk, atomically, with their manifests (docs/design.md §3.4, §3.5).

For each batch: every file is written under a `.`-prefixed temporary name (which Spark's file
source ignores) and fsynced; then every entity's manifest is written atomically; then the files
are renamed into place, dimensions first. A reader therefore never sees a partial file, and a
manifest always exists before its files. A crash leaves at worst a batch whose manifests exist
but some files do not: `resume_point` finds it and the engine rewrites it byte for byte.

Manifests are JSON with one top-level key per line and one file or defect per line, so they
diff well and a ledger of thousands of defects stays cheap to write and to read.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import platform
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from generators.engine import Batch, EntityBatch
from generators.ledger import Ledger
from medallion.contracts.errors import GeneratorError, UnsafePathError
from medallion.contracts.layout import DataRoot, landing_file_name, parse_landing_name
from medallion.contracts.manifest import ManifestError, check_manifest
from medallion.contracts.scenario import Scenario
from medallion.contracts.version import __version__

FORMAT_VERSION = 1
# The generator's own temporaries, by folder: a landing file's name behind a dot, a manifest's
# name behind a dot with `.tmp` (write_text_atomic) or a mkstemp suffix (manifest.write_json_atomic).
_MANIFEST_TMP = re.compile(r"^\.(b\d{6}\.json|run\.json)(\.tmp|\.[a-z0-9_]{8})$")
# Opening a temporary never follows a link a user left under its name.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def iso_instant(epoch_ms: int) -> str:
    """An interval bound as manifests write it: seconds precision unless it has milliseconds."""
    instant = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    if epoch_ms % 1000:
        return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_text(payload: dict[str, Any]) -> str:
    """JSON with one top-level key per line and one list element per line."""
    lines = []
    for key, value in payload.items():
        name = json.dumps(key)
        if isinstance(value, Ledger):
            # Ledger entries arrive encoded, one per line (see generators.ledger).
            lines.append(f"{name}:[\n  {value.text}\n ]" if value.count else f"{name}:[]")
        elif isinstance(value, list) and value:
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in value)
            lines.append(f"{name}:[\n  {items}\n ]")
        else:
            lines.append(f"{name}:{json.dumps(value, ensure_ascii=False, separators=(',', ':'))}")
    return "{" + ",\n ".join(lines) + "}\n"


# Linux's sync_file_range from the C library, where there is one (None elsewhere).
_SYNC_FILE_RANGE = getattr(ctypes.CDLL(None), "sync_file_range", None) if sys.platform == "linux" else None
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages now, without waiting (Linux
    `sync_file_range`): the disk works on a batch's files while the next ones are generated,
    and the fsync before the commit finds most of it done. Only a hint: its result is not
    checked, the fsync is what makes the file durable. Elsewhere a no-op."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(ctypes.c_int(fd), ctypes.c_int64(0), ctypes.c_int64(0), ctypes.c_uint(_SYNC_FILE_RANGE_WRITE))


def _fsync_path(path: Path | str) -> int:
    """fsync a file or folder by name (any descriptor of a file flushes its data); returns the
    nanoseconds the fsync call took."""
    fd = os.open(path, os.O_RDONLY)
    try:
        began = time.perf_counter_ns()
        os.fsync(fd)
        return time.perf_counter_ns() - began
    finally:
        os.close(fd)


def write_text_atomic(path: Path | str, text: str, durable: bool = True) -> int:
    """Write to `.<name>.tmp` in the same folder, fsync, rename over `path`; returns the
    nanoseconds spent in the write (and fsync) calls."""
    folder, name = os.path.split(str(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
    with open(fd, "w", encoding="utf-8") as handle:
        began = time.perf_counter_ns()
        handle.write(text)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        spent = time.perf_counter_ns() - began
    os.replace(tmp, path)
    return spent


@dataclass
class StagedBatch:
    """A batch whose files are written under temporary names, not yet committed."""

    batch: Batch
    renames: list[tuple[str, str]] = field(default_factory=list)  # (temporary, final)
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (path, text)
    bytes: int = 0
    seconds: float = 0.0
    write_ns: int = 0  # inside write() and flush() of its files


@dataclass
class WriteStats:
    """What writing one batch cost."""

    batch_id: int
    lines: int
    bytes: int
    seconds: float
    lines_by_entity: dict[str, int]
    # Nanoseconds inside the write, flush and fsync calls of the batch (landing files,
    # manifests, folders): the time the disk path took, apart from generating and hashing.
    write_ns: int = 0


class LandingWriter:
    """Writes batches of one run into a data root."""

    def __init__(
        self, data: DataRoot, scenario: Scenario, seed: int, durable: bool = True, entities: list[str] | None = None
    ) -> None:
        self.data = data
        self.scenario = scenario
        self.entities = scenario.processing_order if entities is None else entities  # the ones written
        self.seed = seed
        self.durable = durable
        self.config_sha256 = scenario.sha256()
        self._lock_handle: Any = None

    # --- run set-up ---------------------------------------------------------------------------

    def run_manifest(self) -> dict[str, Any]:
        """The content of manifests/run.json: what produced this data root."""
        scenario = self.scenario
        return {
            "scenario": scenario.name,
            "profile": scenario.profile,
            "seed": self.seed,
            "config_sha256": self.config_sha256,
            "clock": {
                "start": iso_instant(int(scenario.clock.start.timestamp() * 1000)),
                "interval_seconds": scenario.clock.interval.total_seconds(),
                "backfill_seconds": scenario.clock.backfill.total_seconds(),
                # Only when set, so run.json of clocks without it stays as it was.
                **(
                    {"live_interval_seconds": scenario.clock.live_interval.total_seconds()}
                    if scenario.clock.live_interval is not None
                    else {}
                ),
            },
            "entities": scenario.processing_order,
            "format": {
                "version": FORMAT_VERSION,
                "nulls": "optional fields are always present, JSON null when empty; a field a "
                "schema-drift `add` introduces is absent from lines that do not carry it",
                "timestamps": "ISO-8601 UTC with milliseconds and Z",
            },
            "versions": {
                "medallion": __version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }

    def open(self) -> int:
        """Lock the data root, check or write run.json, clear the generator's temporary files.

        Returns the batch to write next: the first one that is not complete on disk.

        Raises:
            GeneratorError: `--data` is not a folder one can write to, another generator holds
                it, it holds another run, or its run.json or last manifest is damaged.
            UnsafePathError: a folder or file the generator writes leads out of the data root.
        """
        root = self.data.root
        if root.exists() and not root.is_dir():
            raise GeneratorError(f"--data {root} is a file, not a folder; give a folder (it is created if missing)")
        self.check_paths()
        try:
            self.data.manifests.mkdir(parents=True, exist_ok=True)
            self._lock()
        except OSError as exc:
            raise GeneratorError(
                f"--data {root}: cannot write {exc.filename or root} ({exc.strerror}); give a folder you can write to"
            ) from None
        try:
            wanted = self.run_manifest()
            path = self.data.run_manifest
            if path.is_file():
                self._check_run_manifest(path, wanted)
            else:
                write_text_atomic(path, json.dumps(wanted, indent=1) + "\n", self.durable)
            self.remove_temporaries()
            return resume_point(self.data, self.scenario, self.seed, self.config_sha256, self.entities)
        except OSError as exc:
            self.close()
            raise GeneratorError(
                f"--data {root}: cannot write {exc.filename or root} ({exc.strerror}); give a folder you can write to"
            ) from None
        except BaseException:
            self.close()
            raise

    def _check_run_manifest(self, path: Path, wanted: dict[str, Any]) -> None:
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise GeneratorError(
                f"{path} is damaged ({exc}); restore it, or use a new --data directory"
            ) from None
        if not isinstance(existing, dict):
            raise GeneratorError(f"{path} is not a run manifest (a JSON object); restore it, or use a new --data directory")
        for setting in ("scenario", "profile", "seed", "config_sha256"):
            if existing.get(setting) != wanted[setting]:
                raise GeneratorError(
                    f"{self.data.root} holds a run with {setting}={existing.get(setting)!r}, not "
                    f"{wanted[setting]!r}; use a new --data directory, or the same scenario, "
                    "profile, start and seed to resume it"
                )

    def owned_folders(self) -> list[Path]:
        """The folders the generator writes into: landing/ and manifests/ and one per entity."""
        data = self.data
        names = self.scenario.processing_order
        return [data.landing, data.manifests, *(data.landing_dir(n) for n in names), *(data.manifest_dir(n) for n in names)]

    def check_paths(self) -> None:
        """Refuse, before anything is written or deleted, a folder or file of the generator
        whose real path leaves the data root, and a folder that is not one.

        Raises:
            UnsafePathError: naming the path and the fix.
        """
        data = self.data
        for folder in self.owned_folders():
            data.resolve_inside(folder)
            if folder.exists() and not folder.is_dir():
                raise UnsafePathError(f"{folder} is a file, not a folder; move it out of the data root")
        for path in (data.run_manifest, data.manifests / ".lock"):
            data.resolve_inside(path)
            if path.is_dir():
                raise UnsafePathError(f"{path} is a folder, not a file; move it out of the data root")

    def _lock(self) -> None:
        fd = os.open(self.data.manifests / ".lock", os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        handle = os.fdopen(fd, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise GeneratorError(
                f"another generator is writing to {self.data.root}; stop it first or use another --data"
            ) from None
        self._lock_handle = handle

    def close(self) -> None:
        """Release the data root."""
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def remove_temporaries(self) -> int:
        """Delete the generator's own temporary files (by their exact names) from its folders.

        Nothing else is touched: a user's dotfiles stay, and a link is removed, not followed.
        Returns how many were removed.
        """
        removed = 0
        candidates: list[tuple[Path, re.Pattern[str] | None]] = [(self.data.manifests, _MANIFEST_TMP)]
        for name in self.scenario.processing_order:
            candidates.append((self.data.manifest_dir(name), _MANIFEST_TMP))
            candidates.append((self.data.landing_dir(name), None))
        for folder, pattern in candidates:
            self.data.resolve_inside(folder)
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if pattern is None:
                    parsed = parse_landing_temporary(entry.name)
                    own = parsed is not None and parsed == folder.name
                else:
                    own = pattern.match(entry.name) is not None
                if own and not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    # --- batches ------------------------------------------------------------------------------

    def write(self, batch: Batch) -> WriteStats:
        """Write one batch: temporary files, manifests, then renames (dimensions first)."""
        return self.commit(self.stage(batch))

    def stage(self, batch: Batch) -> StagedBatch:
        """Write the batch's files under temporary names, hashing them on the way (no fsync).
        Each part's lines are read once and then dropped from the batch."""
        started = time.perf_counter()
        # Plain strings, not Path objects: pathlib interns every new name it parses, and a
        # long run writes millions of names.
        root = str(self.data.root)
        staged = StagedBatch(batch=batch)
        for name, part_batch in batch.entities.items():
            files = []
            for part in part_batch.parts:
                folder, file_name = os.path.split(os.path.join(root, part.path))
                tmp = os.path.join(folder, "." + file_name)
                digest, size, write_ns = self._write_temporary(folder, tmp, part.chunks)
                staged.write_ns += write_ns
                part.chunks = ()  # on disk now: let the lines' source arrays go before the commit
                staged.bytes += size
                files.append({"path": part.path, "lines": part.lines, "sha256": digest})
                staged.renames.append((tmp, os.path.join(folder, file_name)))
            payload = self.manifest_payload(batch, part_batch, files)
            manifest_path = os.path.join(root, "manifests", name, f"b{batch.batch_id:06d}.json")
            staged.manifests.append((manifest_path, manifest_text(payload)))
        staged.seconds = time.perf_counter() - started
        return staged

    def commit(self, staged: StagedBatch) -> WriteStats:
        """Make a staged batch visible: fsync its files, write its manifests, rename the files
        into place and fsync their folders. Batches must be committed in order."""
        started = time.perf_counter()
        write_ns = staged.write_ns
        renames = staged.renames
        if self.durable:
            # All files of the batch are on their way to the disk together; one wait each.
            for tmp, _ in renames:
                write_ns += _fsync_path(tmp)
        already = set()
        for tmp, final in renames:
            if os.path.islink(final):
                raise UnsafePathError(f"{final} is a link; the generator writes only real files: delete the link")
            if os.path.exists(final):
                # Renamed in before a crash: the rewrite must be byte-identical.
                if _sha256_file(final) != _sha256_file(tmp):
                    for leftover, _ in renames:
                        Path(leftover).unlink(missing_ok=True)
                    raise GeneratorError(
                        f"{final} exists with different content than this run writes (another numpy "
                        "version or a changed generator?); use a new --data directory"
                    )
                already.add(final)
        for path, text in staged.manifests:
            write_ns += write_text_atomic(path, text, self.durable)
        folders = set()
        for tmp, final in renames:
            if final in already:
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
            folders.add(os.path.dirname(final))
        if self.durable:
            for folder in sorted(folders):
                write_ns += _fsync_path(folder)
        batch = staged.batch
        return WriteStats(
            batch_id=batch.batch_id,
            lines=batch.lines,
            bytes=staged.bytes,
            seconds=staged.seconds + time.perf_counter() - started,
            lines_by_entity={n: e.lines for n, e in batch.entities.items()},
            write_ns=write_ns,
        )

    def _write_temporary(self, folder: str, tmp: str, chunks: Iterable[np.ndarray | bytes]) -> tuple[str, int, int]:
        """(sha256, bytes, nanoseconds inside write and flush) of one temporary file."""
        os.makedirs(folder, exist_ok=True)
        # Piece by piece (runs of lines, and the duplicates between them): joining them first
        # would copy every byte once more.
        digest = hashlib.sha256()
        size = 0
        spent = 0
        clock = time.perf_counter_ns
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o644)
        with open(fd, "wb") as handle:
            for chunk in chunks:
                view = chunk if isinstance(chunk, bytes) else chunk.data
                digest.update(view)
                began = clock()
                handle.write(view)
                spent += clock() - began
                size += len(view)
            began = clock()
            handle.flush()  # what the buffer still holds reaches the kernel inside the timed call
            spent += clock() - began
            if self.durable:
                start_writeback(handle.fileno())
        return digest.hexdigest(), size, spent

    def manifest_payload(self, batch: Batch, entity_batch: EntityBatch, files: list[dict[str, Any]]) -> dict[str, Any]:
        """The manifest of one entity in one batch (docs/design.md §3.5 plus a few extra fields)."""
        start, end = batch.interval
        return {
            "scenario": self.scenario.name,
            "entity": entity_batch.entity,
            "batch_id": batch.batch_id,
            "seed": self.seed,
            "config_sha256": self.config_sha256,
            "interval_start": iso_instant(start),
            "interval_end": iso_instant(end),
            "files": files,
            "lines": entity_batch.lines,
            "clean_records": entity_batch.clean_records,
            "defect_counts": entity_batch.defect_counts,
            # Extra: rows drawn but never written because their unit, parent or referenced row
            # is not clean (their keys are gaps), and the sequence position after this batch.
            "profile": self.scenario.profile,
            "generated_rows": entity_batch.generated,
            "skipped_rows": entity_batch.skipped,
            "sequence_end": entity_batch.sequence_end,
            "defects": entity_batch.defects,
            # Sensor anomalies (valid readings, fate keep), only for entities with faulty sensors.
            **({} if entity_batch.anomalies is None else {"anomalies": entity_batch.anomalies}),
        }


def _sha256_file(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_landing_temporary(name: str) -> str | None:
    """The entity of a landing temporary (`.` + a landing file name), or None."""
    if not name.startswith("."):
        return None
    parsed = parse_landing_name(name[1:])
    return None if parsed is None or name[1:] != landing_file_name(*parsed) else parsed[0]


def resume_point(
    data: DataRoot,
    scenario: Scenario,
    seed: int | None = None,
    config_sha256: str | None = None,
    entities: list[str] | None = None,
) -> int:
    """The first batch that is not complete on disk (every manifest and every file present) for
    `entities` (default: all of the scenario's).

    Batches are written one after another, so only the last one with manifests can be
    incomplete; its manifests are checked (readable, of this scenario, seed and batch) and its
    files, the earlier ones are trusted.

    Raises:
        ManifestError: the last batch's manifest is damaged or belongs to another run.
    """
    names = scenario.processing_order if entities is None else entities
    present: set[int] | None = None
    for name in names:
        folder = data.manifest_dir(name)
        ids = set()
        if folder.is_dir():
            for path in folder.glob("b*.json"):
                stem = path.stem[1:]
                if stem.isdigit() and len(stem) == 6:
                    ids.add(int(stem))
        present = ids if present is None else present & ids
    present = present or set()
    batch = 0
    while batch in present:
        batch += 1
    if batch == 0:
        return 0
    last = batch - 1
    expected = {"scenario": scenario.name, "batch_id": last}
    if seed is not None:
        expected["seed"] = seed
    if config_sha256 is not None:
        expected["config_sha256"] = config_sha256
    for name in names:
        manifest = check_manifest(data.manifest_file(name, last), {**expected, "entity": name})
        for entry in manifest.files:
            if not data.is_inside(data.root / entry.path):
                raise ManifestError(
                    f"{data.manifest_file(name, last)} names {entry.path!r}, outside the data root; delete the "
                    f"manifest to regenerate batch {last}, or use a new --data directory"
                )
            if not (data.root / entry.path).is_file():
                return last
    return batch


class PipelinedWriter:
    """Writes batches in the background while the engine generates the next one.

    Two threads, each fed by a queue of one: the stager assembles, hashes and writes a batch's
    files under temporary names; the committer then waits for the disk (fsync) and publishes
    the batch (manifests, renames). So generation, writing and disk waits all overlap; batches
    still reach the disk strictly in order, and memory stays bounded: at most three batches
    hold their lines (one generated, one queued, one being written; a staged batch has let its
    lines go). Errors surface on the next `submit` or `drain`.
    """

    def __init__(self, writer: LandingWriter, on_written: Callable[[Batch, WriteStats, float], None]) -> None:
        self.writer = writer
        self.on_written = on_written
        self._staging: queue.Queue[tuple[Batch, float] | None] = queue.Queue(maxsize=1)
        self._committing: queue.Queue[tuple[StagedBatch, float] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._stage_loop, name="medallion-stager", daemon=True),
            threading.Thread(target=self._commit_loop, name="medallion-committer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, batch: Batch, generate_seconds: float) -> None:
        """Queue a batch (blocks while the stager still has one queued)."""
        self._raise()
        self._staging.put((batch, generate_seconds))

    def drain(self) -> None:
        """Wait until every submitted batch is on disk."""
        self._staging.join()
        self._committing.join()
        self._raise()

    def close(self) -> None:
        """Drain and stop the threads."""
        self._staging.put(None)  # the stager passes it on to the committer when it is done
        for thread in self._threads:
            thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _stage_loop(self) -> None:
        while True:
            item = self._staging.get()
            try:
                if item is None:
                    self._committing.put(None)
                    return
                if self._error is None:
                    batch, generate_seconds = item
                    self._committing.put((self.writer.stage(batch), generate_seconds))
            except BaseException as exc:  # handed to the submitting thread
                self._error = exc
            finally:
                self._staging.task_done()

    def _commit_loop(self) -> None:
        while True:
            item = self._committing.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    staged, generate_seconds = item
                    stats = self.writer.commit(staged)
                    self.on_written(staged.batch, stats, generate_seconds + stats.seconds)
            except BaseException as exc:  # handed to the submitting thread
                self._error = exc
            finally:
                self._committing.task_done()
