"""The generator's commands as library functions: `generate` (`medallion generate`) and
`print_scenario_schema` (`medallion schema`). medallion/cli.py turns argv into their arguments;
the demo and the notebooks call them directly.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from generators.checks import check_scenario
from medallion.contracts.errors import ConfigError, GeneratorError
from medallion.contracts.layout import DataRoot
from medallion.contracts.paths import DataPathError, check_data_root
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario, scenario_json_schema

if TYPE_CHECKING:  # the runner (numpy and all) loads only when something is generated
    from generators.runner import RunOptions, RunReport


@dataclass(frozen=True)
class GenerateArgs:
    """What `medallion generate` is asked to do (its options, typed)."""

    scenario: str | Path  # NAME (configs/scenarios/NAME.yaml) or a YAML path
    data: Path
    seed: int
    profile: str | None = None
    batches: int | None = None  # write batches 0..N-1, then stop
    duration: float | None = None  # or run this many real seconds (exclusive with batches)
    start: str | None = None  # ISO-8601, or "now" (the current instant, UTC); overrides clock.start
    speed: float | None = None  # simulated seconds per real second; None: the scenario's clock.speed
    serve: str | None = None  # HOST:PORT of the HTTP control API
    quiet: bool = False  # no progress display, no summary (unless `duration` is given)
    durable: bool = True  # fsync every file
    entities: tuple[str, ...] | None = None  # write only these entities (None: all)
    settings: tuple[str, ...] = ()  # `--set PATH=VALUE`, applied after the profiles

    @property
    def run_options(self) -> RunOptions:
        from generators.runner import RunOptions

        return RunOptions(
            batches=self.batches, duration=self.duration, speed=self.speed, durable=self.durable, entities=self.entities
        )


def start_instant(start: str | None) -> str | None:
    """`--start`: "now" is the current instant in UTC (whole seconds); anything else as given."""
    if start is not None and start.strip().lower() == "now":
        return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return start


def load_for_generate(args: GenerateArgs) -> Scenario:
    """The scenario with its profiles, `start` and settings applied, checked for the generator."""
    start = start_instant(args.start)
    overrides: dict[str, Any] = {"clock": {"start": start}} if start else {}
    scenario = load_scenario(args.scenario, profile=args.profile, overrides=overrides or None, settings=args.settings)
    check_scenario(scenario)
    return scenario


def generate(args: GenerateArgs) -> RunReport:
    """Write batches as `args` say, with progress and a summary on stderr unless quiet.

    Returns after the last batch, the duration, or SIGTERM/SIGINT (the batch in hand is finished).

    Raises:
        ConfigError: an option is out of range (named, before anything is read or written).
        GeneratorError: the data root cannot be used (`--data` is a file, read-only, ...).
    """
    from generators.runner import Runner, selected_entities

    options = args.run_options
    options.validate()  # before the scenario is loaded: the option named is the one to fix
    if args.seed < 0:
        raise ConfigError("--seed", [f"{args.seed} is negative; give an integer >= 0, e.g. --seed 42"])
    scenario = load_for_generate(args)
    selected_entities(scenario, args.entities)  # a wrong name is refused before the data root is touched
    try:
        check_data_root(args.data, writes=True)
    except DataPathError as exc:
        raise GeneratorError(str(exc)) from None  # the generator's exit code for an unusable data root
    runner = Runner(scenario, args.seed, DataRoot(args.data), options)
    if not args.quiet:
        runner.log.listeners.append(_print_notable)
        if args.start is not None and args.start.strip().lower() == "now":
            # The run is tied to this instant (it is in the config hash): resuming needs it.
            started = scenario.clock.start.strftime("%Y-%m-%dT%H:%M:%SZ")
            print(f"[info] --start now: the simulated clock starts at {started} (give --start {started} to resume)", file=sys.stderr)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop(by_signal=True)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = None
    try:
        # The data root is locked and checked before the control API (and its token file) exists.
        runner.prepare()
        if args.serve:
            from generators.control import ControlServer

            server = ControlServer(runner, args.serve)
            server.start()
            if not args.quiet:
                print(f"control API on http://{server.host}:{server.port} (OpenAPI at /docs)", file=sys.stderr)
        if args.quiet:
            report = runner.run()
        else:
            from generators.progress import Progress

            label = f"{scenario.name}" + (f" ({scenario.profile})" if scenario.profile else "")
            with Progress(args.batches, 0, label) as progress:
                runner.on_batch.append(progress.update)
                report = runner.run()
    finally:
        if server is not None:
            server.stop()
        runner.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.duration is not None or not args.quiet:
        _print_summary(report)
    return report


def _print_summary(report: RunReport) -> None:
    waited = report.idle_seconds >= 0.01
    print(
        f"{report.batches} batches ({report.first_batch}..{report.next_batch - 1}), "
        f"{report.records:,} records, {report.bytes / 1e6:,.1f} MB in {report.runtime_seconds:.2f} s"
        + (f" (busy {report.busy_seconds:.2f} s, waiting for paced batches or paused the rest)" if waited else "")
        + f"; {report.records_per_second:,.0f} records/s{' while busy' if waited else ''}, "
        f"mean write time {report.mean_write_us_per_record:.3f} us/record "
        f"(write and fsync calls, {report.write_seconds:.3f} s in all)"
        + (" (stopped by signal after the batch in hand)" if report.stopped_by_signal else ""),
        file=sys.stderr,
    )


def _print_notable(entry: dict[str, Any]) -> None:
    if entry["level"] in ("warning", "error") or entry["event"] in ("start", "cleaned", "baseline"):
        print(f"[{entry['level']}] {entry['message']}", file=sys.stderr)


def print_scenario_schema(scenario: str | Path | None = None) -> None:
    """Print the JSON Schema of scenario files; with `scenario`, validate it and its profiles first."""
    if scenario:
        loaded = load_scenario(scenario)
        check_scenario(loaded)
        for profile in loaded.profiles:
            check_scenario(load_scenario(scenario, profile=profile))
        profiles = f" (profiles {', '.join(loaded.profiles)} too)" if loaded.profiles else ""
        print(f"{scenario}: valid{profiles}", file=sys.stderr)
    print(json.dumps(scenario_json_schema(), indent=2))
