"""The run loop: which batch to write when, pause / resume / clean, stop on a signal.

Modes: a number of batches (`--batches N` makes sure batches 0..N-1 exist), a real-time
duration (`--duration SEC`), or continuous. Pacing maps the simulated clock to real time at
`speed` simulated seconds per real second (0 = as fast as possible): batches inside the
scenario's backfill, and any batch already due, are written at once; later ones when the
simulated clock reaches their end. A restart resumes at the first batch that is not complete on
disk. `stop()` (SIGTERM) lets the batch in hand finish; the loop then exits cleanly.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generators.cadence import emulated_config, generation_mode
from generators.engine import Batch, Engine
from generators.writer import (
    LandingWriter,
    PipelinedWriter,
    WriteStats,
    iso_instant,
    parse_landing_temporary,
    resume_point,
)
from medallion.contracts.defects import AnomalySubtype
from medallion.contracts.errors import ConfigError, GeneratorError
from medallion.contracts.layout import DataRoot, parse_landing_name
from medallion.contracts.scenario import Scenario

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# The last instant an ISO-8601 timestamp with a four-digit year can hold: batches ending later
# cannot be written (nor read back by Spark).
LAST_INSTANT_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
MAX_WAIT_SECONDS = 60.0
_MANIFEST_NAME = re.compile(r"^b(\d{6})\.json$")
_MANIFEST_TMP = re.compile(r"^\.b\d{6}\.json(\.tmp|\.[a-z0-9_]{8})$")


@dataclass
class RunOptions:
    """How long and how fast to run."""

    batches: int | None = None
    duration: float | None = None
    speed: float | None = None  # None: the scenario's clock.speed
    durable: bool = True
    entities: tuple[str, ...] | None = None  # write only these (all are still generated: same bytes)

    def validate(self) -> None:
        """Refuse values that would never stop or never make sense (negative, nan, inf).

        Raises:
            ConfigError: naming the option and the fix.
        """
        if self.batches is not None and self.batches < 0:
            raise ConfigError("--batches", [f"{self.batches} is negative; give a number of batches >= 0"])
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise ConfigError(
                "--duration",
                [f"{self.duration} is not a positive number of seconds; give seconds > 0 (leave it out to run until stopped)"],
            )
        if self.entities is not None and (not self.entities or not all(self.entities)):
            raise ConfigError("--entities", ["give entity names separated by commas, e.g. --entities companies,drivers"])
        if self.speed is not None and not (math.isfinite(self.speed) and self.speed >= 0):
            raise ConfigError(
                "--speed", [f"{self.speed} is not a finite number >= 0; give simulated seconds per real second, 0 = as fast as possible"]
            )


@dataclass
class RunReport:
    """What a run did (printed at the end, and by `--duration`).

    The engine generates batch b + 1 while background threads write b, so the time a run
    worked is wall-clock time, not a sum of per-batch times (those overlap): the run's time
    less the waits with nothing in hand (for a paced batch to fall due, or paused)."""

    first_batch: int
    next_batch: int
    batches: int = 0
    records: int = 0
    bytes: int = 0
    idle_seconds: float = 0.0  # waiting, with every batch written, for the next one's time or a resume
    write_ns: int = 0  # inside the write, flush and fsync calls of the batches written (WriteStats.write_ns)
    stopped_by_signal: bool = False
    started: float = field(default_factory=time.monotonic, repr=False)  # monotonic
    ended: float | None = field(default=None, repr=False)

    @property
    def runtime_seconds(self) -> float:
        return (time.monotonic() if self.ended is None else self.ended) - self.started

    @property
    def busy_seconds(self) -> float:
        """Wall-clock seconds spent generating or writing (so far, while running)."""
        return max(self.runtime_seconds - self.idle_seconds, 0.0)

    @property
    def records_per_second(self) -> float:
        """While busy: at --speed 0 the run's own rate, when paced what the generator can do."""
        busy = self.busy_seconds
        return self.records / busy if busy > 0 else 0.0

    @property
    def write_seconds(self) -> float:
        """Seconds measured inside write, flush and fsync calls (they run beside generation)."""
        return self.write_ns / 1e9

    @property
    def mean_write_us_per_record(self) -> float:
        """Time in write and fsync calls per record written, in microseconds."""
        return self.write_ns / self.records / 1e3 if self.records else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON."""
        return {
            "first_batch": self.first_batch,
            "next_batch": self.next_batch,
            "batches": self.batches,
            "records": self.records,
            "bytes": self.bytes,
            "runtime_seconds": round(self.runtime_seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
            "write_seconds": round(self.write_seconds, 6),
            "mean_write_us_per_record": round(self.mean_write_us_per_record, 3),
            "records_per_second": round(self.records_per_second, 1),
            "stopped_by_signal": self.stopped_by_signal,
        }


def selected_entities(scenario: Scenario, names: tuple[str, ...] | None) -> list[str]:
    """The entities a run writes, in processing order: all, or those named (`--entities`).

    Raises:
        ConfigError: a name is not an entity of the scenario (the message lists them).
    """
    order = scenario.processing_order
    if names is None:
        return order
    unknown = [name for name in names if name not in scenario.entities]
    if unknown:
        shown = ", ".join(repr(name[:80]) for name in unknown[:5])
        raise ConfigError("--entities", [f"{shown}: not an entity of {scenario.name}; it has {', '.join(order)}"])
    return [name for name in order if name in names]


class LogBuffer:
    """Structured log entries in memory (the control API serves them), bounded in size."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def log(self, level: str, event: str, message: str, **fields: Any) -> None:
        """Record one entry."""
        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": level,
                "event": event,
                "message": message,
                **fields,
            }
            self._entries.append(entry)
        for listener in self.listeners:
            listener(entry)

    def query(self, since: int = 0, limit: int = 100, level: str = "debug") -> tuple[list[dict[str, Any]], int]:
        """Entries after `since` at `level` or above, oldest first, and the next `since`."""
        floor = LEVELS.get(level, 10)
        with self._lock:
            found = [e for e in self._entries if e["seq"] > since and LEVELS[e["level"]] >= floor][:limit]
            last = found[-1]["seq"] if found else max(since, 0)
        return found, last


@dataclass
class _EntityStatus:
    batches: int = 0
    last_batch: int | None = None
    last_interval_end: str | None = None
    last_write_monotonic: float | None = None
    lines: int = 0


@dataclass
class _State:
    status: str = "starting"  # starting, running, paused, stopped
    paused: bool = False
    idle: bool = True
    cleaned: bool = False
    baseline_request: bool = False
    entity: dict[str, _EntityStatus] = field(default_factory=dict)


class Runner:
    """Drives an engine and a writer over a data root; thread-safe control methods."""

    def __init__(self, scenario: Scenario, seed: int, data: DataRoot, options: RunOptions, log: LogBuffer | None = None) -> None:
        options.validate()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("--seed", [f"{seed!r} is not an integer >= 0; give e.g. --seed 42"])
        speed = scenario.clock.speed if options.speed is None else options.speed
        if not (math.isfinite(speed) and speed >= 0):
            raise ConfigError("clock.speed", [f"{speed} is not a finite number >= 0; set it in the scenario or give --speed"])
        self.scenario = scenario
        self.seed = seed
        self.data = data
        self.options = options
        self.log = log or LogBuffer()
        self.entities = selected_entities(scenario, options.entities)
        self.engine = Engine(scenario, seed)
        self.writer = LandingWriter(data, scenario, seed, durable=options.durable, entities=self.entities)
        self.speed = speed
        self.interval_seconds = scenario.clock.interval.total_seconds()
        self.backfill_batches = scenario.clock.backfill_batches
        self.started_monotonic = time.monotonic()
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._state = _State(entity={name: _EntityStatus() for name in self.entities})
        self._next_batch = 0
        self._anchor: tuple[float, float] | None = None  # (wall monotonic, simulated epoch seconds)
        self.on_batch: list[Callable[[WriteStats, RunReport], None]] = []
        self.report = RunReport(0, 0)
        self.stopped_by_signal = False
        self._first: int | None = None  # set by prepare()
        self._committed = 0  # the first batch not yet on disk

    def prepare(self) -> int:
        """Open the data root (lock, checks, temporaries) once; returns the batch to write next.

        Raises:
            GeneratorError, UnsafePathError: the data root cannot be used (the message says why).
        """
        if self._first is None:
            self._first = self.writer.open()
            self._committed = self._first
        return self._first

    def close(self) -> None:
        """Release the data root (run() does this itself; for a run that never started)."""
        self.writer.close()

    @property
    def mode(self) -> str:
        if self.options.batches is not None:
            return "batches"
        if self.options.duration is not None:
            return "duration"
        return "continuous"

    # --- control (any thread) -------------------------------------------------------------------

    def stop(self, by_signal: bool = False) -> None:
        """Finish the batch in hand, then leave the loop."""
        self.stopped_by_signal = self.stopped_by_signal or by_signal
        self._stop.set()
        with self._wake:
            self._wake.notify_all()

    def pause(self, timeout: float = 30.0) -> dict[str, Any]:
        """Stop after the batch in hand; returns once the runner is idle (or on timeout)."""
        with self._wake:
            self._state.paused = True
            self._wake.notify_all()
            self._wake.wait_for(lambda: self._state.idle or self._stop.is_set(), timeout=timeout)
            if self._state.status == "running":
                self._state.status = "paused"
        self.log.log("info", "paused", f"paused before batch {self._next_batch}", next_batch=self._next_batch)
        return {"status": self._state.status, "next_batch": self._next_batch}

    def resume(self, timeout: float = 60.0) -> dict[str, Any]:
        """Continue; after a clean, write the baseline (batch 0) at once and say so."""
        with self._wake:
            was_cleaned = self._state.cleaned
            self._state.paused = False
            self._state.baseline_request = was_cleaned
            if self._state.status == "paused":
                self._state.status = "running"
            self._anchor = None  # re-anchor pacing: no burst of "overdue" batches after a pause
            self._wake.notify_all()
            if was_cleaned:
                self._wake.wait_for(lambda: not self._state.cleaned or self._stop.is_set(), timeout=timeout)
        result: dict[str, Any] = {"status": self._state.status, "baseline_regenerated": was_cleaned}
        if was_cleaned:
            written = {n: s.lines for n, s in self._state.entity.items() if s.last_batch == 0}
            result["batch"] = 0
            result["lines"] = written
            self.log.log("info", "baseline", "baseline regenerated after clean (batch 0)", lines=written)
        self.log.log("info", "resumed", f"resumed at batch {self._next_batch}", next_batch=self._next_batch)
        return result

    def inject_anomaly(self, subtype: str, engine: str, sensor: str, duration_seconds: float, magnitude: float) -> dict[str, Any]:
        """Queue a sensor anomaly for the next batch generated (`Engine.inject`); returns its id.

        Raises:
            ValueError: no such sensor, or no such unit in service (the message says which).
        """
        injection = self.engine.inject(AnomalySubtype(subtype), engine, sensor, round(duration_seconds * 1000), magnitude)
        with self._wake:
            next_batch = self._next_batch
        self.log.log("info", "anomaly", f"{subtype} on {engine} {sensor} queued for the next batch", id=injection.id,
                     subtype=subtype, engine=engine, sensor=sensor, duration_seconds=duration_seconds, magnitude=magnitude)
        return {"id": injection.id, "subtype": subtype, "engine": engine, "sensor": sensor, "entity": injection.entity,
                "duration_seconds": duration_seconds, "magnitude": magnitude, "next_batch": next_batch}

    def clean(self) -> dict[str, Any]:
        """Delete the generator's landing files and manifests (only while paused); the next batch is 0.

        Every folder is checked before anything is deleted, and only files with the generator's
        own names go (a user's files stay, and are counted in `kept_files`). Manifests go first,
        newest batch first, then landing files: should a deletion fail half-way, what remains is
        still a run the generator resumes without a gap.

        Raises:
            RuntimeError: the generator is not paused.
            UnsafePathError: a folder leads out of the data root (nothing was deleted).
            GeneratorError: a deletion failed (the message says where the run resumes).
        """
        with self._wake:
            if not (self._state.paused and self._state.idle):
                raise RuntimeError("clean needs the generator paused: POST /api/pause first")
            self.writer.check_paths()
            manifests, landing, kept = self._clean_plan()
            removed_files = 0
            removed_bytes = 0
            for path, size in [*manifests, *landing]:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    first = resume_point(self.data, self.scenario, self.seed, self.writer.config_sha256, self.entities)
                    self._restart_at(first)
                    self.log.log("error", "clean", f"clean stopped at {path}: {exc.strerror}", files=removed_files)
                    raise GeneratorError(
                        f"clean stopped at {path} ({exc.strerror}) after removing {removed_files} files; the rest is "
                        f"a complete run up to batch {first}, where resume continues; fix the folder and clean again"
                    ) from None
                removed_files += 1
                removed_bytes += size
            self._restart_at(0)
        if kept:
            shown = ", ".join(kept[:10]) + (" ..." if len(kept) > 10 else "")
            self.log.log("warning", "clean", f"kept {len(kept)} files the generator did not write: {shown}", kept=len(kept))
        self.log.log("warning", "cleaned", f"removed {removed_files} files", files=removed_files, bytes=removed_bytes)
        return {
            "status": "paused",
            "removed_files": removed_files,
            "removed_bytes": removed_bytes,
            "kept_files": len(kept),
            "next_batch": 0,
        }

    def _clean_plan(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[str]]:
        """(manifests newest batch first, landing files, names of files kept), with sizes."""
        manifests: list[tuple[int, str, int]] = []
        landing: list[tuple[str, int]] = []
        kept: list[str] = []
        for name in self.entities:
            for folder, is_landing in ((self.data.manifest_dir(name), False), (self.data.landing_dir(name), True)):
                if not folder.is_dir():
                    continue
                for entry in os.scandir(folder):
                    own_file = not entry.is_dir(follow_symlinks=False)
                    size = entry.stat(follow_symlinks=False).st_size
                    if is_landing:
                        parsed = parse_landing_name(entry.name)
                        if own_file and ((parsed is not None and parsed[0] == name) or parse_landing_temporary(entry.name) == name):
                            landing.append((entry.path, size))
                            continue
                    else:
                        match = _MANIFEST_NAME.match(entry.name)
                        if own_file and match is not None:
                            manifests.append((int(match[1]), entry.path, size))
                            continue
                        if own_file and _MANIFEST_TMP.match(entry.name):
                            manifests.append((-1, entry.path, size))
                            continue
                    kept.append(Path(entry.path).relative_to(self.data.root).as_posix())
        manifests.sort(key=lambda item: -item[0])
        return [(path, size) for _, path, size in manifests], landing, sorted(kept)

    def _restart_at(self, first: int) -> None:
        """Make the engine and the status agree with a disk holding batches 0..first-1 (lock held)."""
        self.engine = Engine(self.scenario, self.seed)
        self.engine.skip_to(first)
        self._next_batch = first
        self._committed = first
        self._state.cleaned = first == 0
        self._state.entity = {name: _EntityStatus() for name in self.entities}

    def health(self) -> dict[str, Any]:
        """Status, uptime, cadence and per-entity progress."""
        now = time.monotonic()
        entities = {}
        for name, status in self._state.entity.items():
            idle = None if status.last_write_monotonic is None else round(now - status.last_write_monotonic, 3)
            entities[name] = {
                "batches": status.batches,
                "last_batch": status.last_batch,
                "last_batch_time": status.last_interval_end,
                "idle_seconds": idle,
                "last_batch_lines": status.lines,
            }
        begin, end = self.engine.interval(self._next_batch)  # live batches may be shorter (clock.live_interval)
        interval_seconds = (end - begin) / 1000
        seconds_per_batch = interval_seconds / self.speed if self.speed > 0 else 0.0
        return {
            "status": self._state.status,
            "uptime_seconds": round(now - self.started_monotonic, 3),
            "mode": self.mode,
            # How the simulated clock maps to real time, and for an emulated pace what each
            # batch holds (the source system's emulated presets answer the same question).
            "generation_mode": generation_mode(self.speed),
            "emulated_config": emulated_config(self.scenario, self.speed, self.entities),
            "scenario": self.scenario.name,
            "profile": self.scenario.profile,
            "seed": self.seed,
            "next_batch": self._next_batch,
            "cadence": {
                "interval_seconds": interval_seconds,
                "speed": self.speed,
                "real_seconds_per_batch": seconds_per_batch,
                "backfill_batches": self.backfill_batches,
                "live": self._next_batch >= self.backfill_batches,
            },
            "records": self.report.records,
            "records_per_second": round(self.report.records_per_second, 1),
            "entities": entities,
        }

    # --- the loop (one thread) ------------------------------------------------------------------

    def run(self) -> RunReport:
        """Write batches until the mode's end, a stop, or forever (continuous).

        Raises:
            GeneratorError: writing failed (full disk, a folder that cannot be written) or the
                simulated clock passed year 9999; the batches before it are complete on disk.
        """
        try:
            return self._run()
        except OSError as exc:
            where = exc.filename or f"--data {self.data.root}"
            self._remove_temporaries_after_failure()
            done = self._committed
            kept = f"batches 0..{done - 1} are complete on disk" if done else "no batch is complete on disk"
            self.log.log("error", "failed", f"writing batch {done} failed: {exc.strerror}", batch=done)
            raise GeneratorError(
                f"writing batch {done} failed: {exc.strerror} ({where}); {kept}; free space or fix the folder, then "
                f"run the same command again to continue at batch {done}"
            ) from None
        finally:
            self.writer.close()
            with self._wake:
                self._state.status = "stopped"
                self._state.idle = True
                self._wake.notify_all()

    def _remove_temporaries_after_failure(self) -> None:
        # A failed batch's temporaries would hold the space a full disk needs back.
        try:
            self.writer.remove_temporaries()
        except (OSError, GeneratorError) as exc:
            self.log.log("warning", "failed", f"could not remove temporary files: {exc}")

    def _end_of_time(self, batch_id: int) -> GeneratorError:
        end = iso_instant(LAST_INSTANT_MS)
        kept = f"batches 0..{batch_id - 1} are written" if batch_id else "nothing was written"
        return GeneratorError(
            f"batch {batch_id} would end after {end}, the last instant a four-digit-year timestamp can hold; "
            f"{kept}; give an earlier --start (or clock.start in the scenario) with a new --data directory"
        )

    def _run(self) -> RunReport:
        first = self.prepare()
        self.log.log("info", "start", f"{self.scenario.name}: resuming at batch {first}" if first else f"{self.scenario.name}: starting at batch 0", next_batch=first, mode=self.mode)
        self.engine.skip_to(first)
        self._next_batch = first
        self.report = RunReport(first, first)
        started = self.report.started
        deadline = None if self.options.duration is None else started + self.options.duration
        # Batch b is written (and b - 1 committed) in background threads while b + 1 is generated.
        pipeline = PipelinedWriter(self.writer, self._written)
        finished = False
        try:
            while True:
                action, wait = self._next_action(deadline)
                if action == "end":
                    pipeline.drain()  # what is generated reaches the disk before the error
                    raise self._end_of_time(self._next_batch)
                if action == "write":
                    began = time.perf_counter()
                    batch = self.engine.generate()
                    if len(self.entities) < len(batch.entities):
                        batch.entities = {n: e for n, e in batch.entities.items() if n in self.entities}
                    with self._wake:
                        self._next_batch = batch.batch_id + 1
                    pipeline.submit(batch, time.perf_counter() - began)
                    continue
                pipeline.drain()  # outside the lock: the writer's callback takes it
                with self._wake:
                    self._state.idle = True
                    self._wake.notify_all()
                    if action == "stop":
                        break
                    if action == "pause":
                        self._state.status = "paused"
                    waiting = time.monotonic()
                    # Capped: the loop looks again on waking, and a tiny --speed puts the next batch
                    # further off than a lock's timeout can hold.
                    self._wake.wait(timeout=min(wait, MAX_WAIT_SECONDS))
                    self.report.idle_seconds += time.monotonic() - waiting
            finished = True
        finally:
            if finished:
                pipeline.close()
            else:
                try:
                    pipeline.close()
                except Exception as exc:  # the first error is already propagating
                    self.log.log("error", "failed", f"writer stopped after an earlier error: {exc}")
        self.report.ended = time.monotonic()
        self.report.stopped_by_signal = self.stopped_by_signal
        self.report.next_batch = self._next_batch
        self.log.log("info", "stop", f"stopped before batch {self._next_batch}", **self.report.as_dict())
        return self.report

    def _next_action(self, deadline: float | None) -> tuple[str, float]:
        """What the loop does next: write, wait (seconds), pause or stop."""
        with self._wake:
            if self._stop.is_set():
                return "stop", 0.0
            if self._state.paused:
                return "pause", 0.5
            self._state.status = "running"
            if self.options.batches is not None and self._next_batch >= self.options.batches:
                return "stop", 0.0
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return "stop", 0.0
            wait = self._due(self._next_batch) - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait > 0:
                return "wait", wait
            if self.engine.interval(self._next_batch)[1] > LAST_INSTANT_MS:
                return "end", 0.0
            self._state.idle = False
            return "write", 0.0

    def _due(self, batch_id: int) -> float:
        """The monotonic time at which a batch may be written."""
        # Only the baseline itself is due at once after a clean: the batches after it keep the
        # cadence (until batch 0 reached the disk, every batch once counted as the baseline).
        if self._state.baseline_request and batch_id == 0:
            return 0.0
        if self.speed <= 0:
            return 0.0
        start, end = self.engine.interval(batch_id)
        if self._anchor is None:
            backfill_end = self.engine.interval(self.backfill_batches)[0] / 1000 if self.backfill_batches else 0.0
            self._anchor = (time.monotonic(), max(start / 1000, backfill_end))
        wall, simulated = self._anchor
        return wall + (end / 1000 - simulated) / self.speed

    def _written(self, batch: Batch, stats: WriteStats, busy: float) -> None:
        """Called by the writer thread once a batch is on disk."""
        now = time.monotonic()
        with self._wake:
            self._committed = batch.batch_id + 1
            report = self.report
            report.batches += 1
            report.records += stats.lines
            report.bytes += stats.bytes
            report.write_ns += stats.write_ns
            for name, lines in stats.lines_by_entity.items():
                status = self._state.entity[name]
                status.batches += 1
                status.last_batch = batch.batch_id
                status.last_interval_end = iso_instant(batch.interval[1])
                status.last_write_monotonic = now
                status.lines = lines
            if self._state.cleaned and batch.batch_id == 0:
                # The pacing stays anchored where batch 1 was first considered (right after the
                # baseline was generated): re-anchoring here, while the loop already waited for
                # batch 1, once put it two cadences after the baseline.
                self._state.cleaned = False
                self._state.baseline_request = False
            self._wake.notify_all()
        self.log.log(
            "info",
            "batch",
            f"batch {batch.batch_id}: {stats.lines} lines in {busy * 1000:.1f} ms",
            batch=batch.batch_id,
            lines=stats.lines,
            lines_by_entity=stats.lines_by_entity,
            milliseconds=round(busy * 1000, 2),
        )
        for callback in self.on_batch:
            callback(stats, report)
