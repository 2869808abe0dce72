"""Running streaming queries: stages, graceful SIGTERM, one process per checkpoint, job mains.

A stage is a list of queries that may run side by side; stages run one after the other so
dimensions reach silver before the facts that reference them. `--continuous` repeats that
ordered run on the trigger interval (`run_cycles`), skipping the queries whose input has not
changed since they last ran to the end (`InputWatch`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from pyspark.errors import StreamingQueryException
from pyspark.sql.streaming import StreamingQuery

from medallion.contracts.errors import MedallionError, PipelineError
from medallion.contracts.layout import DataRoot
from medallion.contracts.logs import configure_logging
from medallion.contracts.options import add_master_option, add_mode_options, add_scenario_options
from spark_jobs.config import pipeline_config
from spark_jobs.session import build_session, options_from_args

Starter = Callable[[], StreamingQuery]


@dataclass(frozen=True)
class Planned:
    """One query of a stage: its name, how to start it, and a snapshot of its input (a listing
    or a Delta version; None when unknown) for `InputWatch`."""

    name: str
    start: Starter
    input_state: Callable[[], Hashable | None]


@dataclass
class InputWatch:
    """`--continuous`: the input each query had when it last ran to the end.

    Starting an availableNow query costs seconds even when it finds nothing new (query start,
    checkpoint and Delta log reads). A pass skips a query whose input is unchanged since its last
    complete run: that run already took everything in, so running again would change nothing.
    Kept per process, so the first pass after a start always runs every query.
    """

    done: dict[str, Hashable] = field(default_factory=dict)

    def unchanged(self, name: str, state: Hashable | None) -> bool:
        return state is not None and self.done.get(name) == state

    def record(self, name: str, state: Hashable | None) -> None:
        if state is not None:
            self.done[name] = state


class GracefulStop:
    """SIGTERM/SIGINT set a flag; running queries finish the micro-batch in hand, then stop."""

    def __init__(self) -> None:
        self.requested = threading.Event()

    def install(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        print(f"[pipeline] {signal.Signals(signum).name}: finishing the micro-batch in hand, then stopping", flush=True)
        self.requested.set()


STOP = GracefulStop()


class CheckpointLock:
    """An exclusive lock on a data root's checkpoints: a second pipeline copy fails clearly.

    Spark only notices concurrent runs of one checkpoint inside one JVM; two processes on one
    checkpoint would corrupt each other, and Delta on a local disk allows one writer per table.
    """

    def __init__(self, data: DataRoot) -> None:
        self.path = data.lake / "_checkpoints" / ".lock"
        self._handle: IO[str] | None = None

    def __enter__(self) -> CheckpointLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise PipelineError(
                f"another medallion pipeline (pid {holder}) is running on {self.path.parent}; "
                "stop it first, or give this run another --data root"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


# The data root whose rebuild `medallion reprocess` is running in this thread: its own pipeline
# pass must get past the marker it wrote, every other pipeline must not.
_REBUILDING: ContextVar[Path | None] = ContextVar("medallion_rebuilding", default=None)


@contextlib.contextmanager
def rebuilding(data: DataRoot) -> Iterator[None]:
    """Within this block, `refuse_while_reprocess_pending` lets this thread's pipeline run on `data`."""
    token = _REBUILDING.set(data.root)
    try:
        yield
    finally:
        _REBUILDING.reset(token)


def refuse_while_reprocess_pending(data: DataRoot) -> None:
    """PipelineError while an interrupted `medallion reprocess` left its marker: silver,
    quarantine, quality and gold may be half deleted, and a pipeline run would build on that."""
    marker = data.reprocess_marker
    if not os.path.lexists(marker) or _REBUILDING.get() == data.root:
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    recorded = recorded if isinstance(recorded, dict) else {}
    started = recorded.get("started_at", "at an unknown time")
    options = f"--scenario {recorded.get('scenario') or 'S'}"
    if recorded.get("profile"):
        options += f" --profile {recorded['profile']}"
    raise PipelineError(
        f"a `medallion reprocess` started {started} did not finish ({marker} is still there), so silver, "
        f"quarantine, quality and gold may be half rebuilt: run `medallion reprocess {options} "
        f"--data {data.root}` again to finish it, then the pipeline"
    )


def stop_after_current_batch(queries: Sequence[StreamingQuery], timeout: float = 600.0) -> None:
    """Let each query finish its active trigger, then stop it."""
    deadline = time.monotonic() + timeout
    for query in queries:
        while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
            time.sleep(0.1)
        if query.isActive:
            query.stop()


def await_queries(
    queries: Sequence[StreamingQuery],
    stop: GracefulStop = STOP,
) -> None:
    """Wait for every query to end (availableNow) or for a stop request; raise on failure."""
    try:
        while any(q.isActive for q in queries):
            for query in queries:
                if query.isActive:
                    query.awaitTermination(0.5)  # type: ignore[arg-type]  # seconds; floats work
            if stop.requested.is_set():
                stop_after_current_batch(queries)
                break
    except StreamingQueryException as exc:
        for query in queries:
            if query.isActive:
                query.stop()
        raise PipelineError(f"streaming query failed: {_first_line(exc)}") from exc
    # A query that failed and ended between two polls raises nothing above: ask each one.
    for query in queries:
        failure = query.exception()
        if failure is not None:
            raise PipelineError(f"streaming query {query.name} failed: {_first_line(failure)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_queries(stages: Sequence[Sequence[Planned]], stop: GracefulStop = STOP, watch: InputWatch | None = None) -> None:
    """Run stages in order, each query until what is there now is processed (availableNow).

    `--continuous` repeats these ordered runs (see `run_cycles`), because independent always-on
    queries would let a fact outrun the dimension it references. With a `watch`, queries whose
    input is unchanged since their last complete run are not started.
    """
    for stage in stages:
        if stop.requested.is_set():
            break
        # The snapshot is taken before the start: input arriving during the run counts as new.
        states = {plan.name: plan.input_state() for plan in stage} if watch else {}
        due = [plan for plan in stage if not (watch and watch.unchanged(plan.name, states[plan.name]))]
        await_queries([plan.start() for plan in due], stop)
        if watch and not stop.requested.is_set():
            for plan in due:
                watch.record(plan.name, states[plan.name])


def run_cycles(
    run_once: Callable[[], object],
    interval_seconds: float,
    stop: GracefulStop = STOP,
) -> int:
    """`--continuous`: repeat `run_once` every `interval_seconds` (the trigger interval) until a
    stop is requested; a cycle in progress finishes its micro-batch first. Returns the cycles run.

    Each cycle is the whole ordered `--once` run, so in every cycle dimensions reach silver
    before the facts that reference them, exactly as in `--once`.
    """
    cycles = 0
    while not stop.requested.is_set():
        began = time.monotonic()
        run_once()
        cycles += 1
        stop.requested.wait(max(0.0, interval_seconds - (time.monotonic() - began)))
    return cycles


def job_main(job: str, run: Callable[..., None]) -> None:
    """`main()` of a job module under spark-submit: parse, load config, build session, run."""
    parser = argparse.ArgumentParser(prog=f"spark_jobs/{job}.py", description=f"medallion {job} job", allow_abbrev=False)
    add_scenario_options(parser)
    add_mode_options(parser)
    add_master_option(parser)
    args = parser.parse_args()
    configure_logging()
    try:
        cfg = pipeline_config(args.scenario, args.data, profile=args.profile, once=not args.continuous)
        from spark_jobs.storage import check_data_root

        check_data_root(cfg)  # before the lock file is made in the lake, or Spark starts
        refuse_while_reprocess_pending(cfg.data)
        STOP.install()
        with CheckpointLock(cfg.data):
            spark = build_session(options_from_args(f"medallion-{job}", args))
            if cfg.once:
                run(spark, cfg)
            else:
                watch = InputWatch()
                run_cycles(lambda: run(spark, cfg, watch=watch), cfg.scenario.pipeline.trigger_interval.total_seconds())
    except MedallionError as exc:
        print(f"medallion {job}: error: {exc}", flush=True)
        raise SystemExit(exc.exit_code) from None


def checkpoint_exists(path: str) -> bool:
    """Whether a streaming checkpoint has already committed something."""
    return (Path(path) / "commits").is_dir()
