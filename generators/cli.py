"""`medallion generate` and `medallion schema` (dispatched from medallion/cli.py)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from types import FrameType
from typing import Any

from generators.checks import check_scenario
from medallion.contracts.errors import ConfigError
from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario, scenario_json_schema


def load_for_generate(args: argparse.Namespace) -> Scenario:
    """The scenario with its profile and `--start` applied, checked for the generator."""
    overrides: dict[str, Any] = {}
    if getattr(args, "start", None):
        overrides["clock"] = {"start": args.start}
    scenario = load_scenario(args.scenario, profile=args.profile, overrides=overrides or None)
    check_scenario(scenario)
    return scenario


def run_generate(args: argparse.Namespace) -> int:
    """Write batches as the flags say; print a summary. Exit 0 also after SIGTERM/SIGINT."""
    from generators.runner import Runner, RunOptions

    options = RunOptions(
        batches=args.batches,
        duration=args.duration,
        speed=args.speed,
        durable=not getattr(args, "no_fsync", False),
    )
    options.validate()  # before the scenario is loaded: the option named is the one to fix
    if args.seed < 0:
        raise ConfigError("--seed", [f"{args.seed} is negative; give an integer >= 0, e.g. --seed 42"])
    scenario = load_for_generate(args)
    runner = Runner(scenario, args.seed, DataRoot(args.data), options)
    quiet = bool(args.quiet)
    if not quiet:
        runner.log.listeners.append(_print_notable)

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
            if not quiet:
                print(f"control API on http://{server.host}:{server.port} (OpenAPI at /docs)", file=sys.stderr)
        if quiet:
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
    summary = report.as_dict()
    waited = report.idle_seconds >= 0.01
    if args.duration is not None or not quiet:
        print(
            f"{report.batches} batches ({report.first_batch}..{report.next_batch - 1}), "
            f"{report.records:,} records, {report.bytes / 1e6:,.1f} MB in {report.runtime_seconds:.2f} s"
            + (f" (busy {report.busy_seconds:.2f} s, waiting for paced batches or paused the rest)" if waited else "")
            + f"; {report.records_per_second:,.0f} records/s{' while busy' if waited else ''}, "
            f"mean write time {report.mean_write_us_per_record:.3f} us/record"
            + (" (stopped by signal after the batch in hand)" if report.stopped_by_signal else ""),
            file=sys.stderr,
        )
    if args.duration is not None:
        print(json.dumps(summary))
    return 0


def _print_notable(entry: dict[str, Any]) -> None:
    if entry["level"] in ("warning", "error") or entry["event"] in ("start", "cleaned", "baseline"):
        print(f"[{entry['level']}] {entry['message']}", file=sys.stderr)


def run_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of scenario files; with --scenario, validate that file too."""
    if args.scenario:
        scenario = load_scenario(args.scenario)
        check_scenario(scenario)
        for profile in scenario.profiles:
            check_scenario(load_scenario(args.scenario, profile=profile))
        profiles = f" (profiles {', '.join(scenario.profiles)} too)" if scenario.profiles else ""
        print(f"{args.scenario}: valid{profiles}", file=sys.stderr)
    print(json.dumps(scenario_json_schema(), indent=2))
    return 0
