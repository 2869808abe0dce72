"""The `medallion` command line (docs/design.md §3.1). Each subcommand imports only what it needs, so
`medallion generate` starts in a blink and never loads Spark."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from medallion.contracts.errors import MedallionError
from medallion.contracts.logs import LOG_FORMATS, configure_logging
from medallion.contracts.options import (
    add_master_option,
    add_mode_options,
    add_scenario_options,
    add_spark_options,
    add_target_option,
    add_write_mode_option,
    export_kinds,
    spark_settings,
)
from medallion.contracts.paths import (
    STORAGE_ERRNOS,
    check_data_root,
    check_output_file,
    storage_error,
)

Handler = Callable[[argparse.Namespace], int]
# Text of a JVM-side failure that is really the disk (Spark wraps it in a Py4J error).
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed, a count that may be zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
    return value


# The groups of `medallion bench` (medallion/bench.py GROUPS; kept here so --help needs no import).
BENCH_GROUPS = ("generator", "pipeline", "export")


def bench_groups(text: str) -> list[str]:
    """argparse type of `bench --only`: a comma-separated subset of BENCH_GROUPS."""
    groups = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in groups if g not in BENCH_GROUPS]
    if unknown or not groups:
        raise argparse.ArgumentTypeError(
            f"no benchmark group named {', '.join(map(repr, unknown)) or repr(text)}; available: {', '.join(BENCH_GROUPS)}"
        )
    return groups


def entity_names(text: str) -> tuple[str, ...]:
    """argparse type of `generate --entities`: comma-separated names (checked against the scenario later)."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} holds an empty name; write e.g. companies,drivers")
    return names


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a number of batches)."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive; give 1 or more")
    return value


class _StrictParser(argparse.ArgumentParser):
    """A subcommand's parser: no prefix matching of long options."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(**kwargs)  # type: ignore[arg-type]


class VersionAction(argparse.Action):
    """`--version`: medallion's version and the Spark, Delta and Java it runs on, without a JVM
    session (the versions are read from the installed packages and `java -version`)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        from medallion.bootstrap import versions_text

        print(versions_text())
        parser.exit()


# One handler per command: it turns the parsed options into the typed arguments of the
# command's library function, checks the paths it is given, and calls it.


def _generate(args: argparse.Namespace) -> int:
    from generators.commands import GenerateArgs, generate

    report = generate(GenerateArgs(
        scenario=args.scenario, data=args.data, seed=args.seed, profile=args.profile, batches=args.batches,
        duration=args.duration, start=args.start, speed=args.speed, serve=args.serve, quiet=args.quiet,
        durable=not args.no_fsync, entities=args.entities, settings=tuple(args.set),
    ))
    if args.duration is not None:
        print(json.dumps(report.as_dict()))
    return 0


def _schema(args: argparse.Namespace) -> int:
    from generators.commands import print_scenario_schema

    print_scenario_schema(args.scenario)
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    from spark_jobs.config import parse_layers, pipeline_config
    from spark_jobs.pipeline import report_once, run_pipeline
    from spark_jobs.session import options_from_args, spark_event_dir

    check_data_root(args.data, writes=True)
    cfg = pipeline_config(args.scenario, args.data, profile=args.profile, once=not args.continuous,
                          layers=parse_layers(args.layers))
    metrics = None
    if not cfg.once:
        from medallion.observe import serve

        metrics = serve(args.metrics_address)
        print(f"Metrics: {metrics.url}", flush=True)
    try:
        # A long run shows its Spark UI; every run leaves event logs for a history server.
        result = run_pipeline(cfg, options_from_args("medallion-pipeline", args, ui=not cfg.once,
                                                     event_log_dir=spark_event_dir(cfg.data)))
    finally:
        if metrics is not None:
            metrics.close()
    if cfg.once:
        report_once(result, cfg)
    return 0


def _reprocess(args: argparse.Namespace) -> int:
    from spark_jobs.config import pipeline_config
    from spark_jobs.pipeline import report_once
    from spark_jobs.reprocess import report, run_reprocess
    from spark_jobs.session import options_from_args

    check_data_root(args.data, writes=True, must_exist=True)
    cfg = pipeline_config(args.scenario, args.data, profile=args.profile)
    result = run_reprocess(cfg, options_from_args("medallion-reprocess", args))
    report(result)
    if result.pipeline is not None and result.pipeline.alerts:
        report_once(result.pipeline, cfg)  # QualityAlert for the rebuilt batches, as `pipeline --once`
    return 0


def _export(args: argparse.Namespace) -> int:
    from spark_jobs.config import export_config
    from spark_jobs.export import run_export
    from spark_jobs.session import options_from_args

    check_data_root(args.data, writes=False, must_exist=True)
    cfg = export_config(
        args.scenario, args.data, profile=args.profile, targets=export_kinds(args.target), write_mode=args.write_mode
    )
    run_export(cfg, options_from_args("medallion-export", args))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from medallion.contracts.layout import DataRoot
    from medallion.contracts.scenario_loader import load_scenario
    from medallion.verify import run_verify
    from spark_jobs.session import options_from_args

    check_data_root(args.data, writes=False, must_exist=True)
    scenario = load_scenario(args.scenario, profile=args.profile)
    run_verify(scenario, DataRoot(args.data), options_from_args("medallion-verify", args))
    return 0


def _retention(args: argparse.Namespace) -> int:
    from medallion.contracts.layout import DataRoot
    from medallion.contracts.scenario_loader import load_scenario
    from spark_jobs.lifecycle import GracefulStop
    from spark_jobs.retention import retain_forever, run_retention
    from spark_jobs.session import build_session, options_from_args

    check_data_root(args.data, writes=True, must_exist=True)
    scenario = load_scenario(args.scenario, profile=args.profile)
    data = DataRoot(args.data)
    stop = GracefulStop().install()
    spark = build_session(options_from_args("medallion-retention", args, shuffle_partitions=2))
    try:
        if args.every is None:
            print(run_retention(spark, scenario, data, args.older_than).line())
        else:
            retain_forever(lambda: run_retention(spark, scenario, data, args.older_than), args.every,
                           stopping=stop.requested.is_set)
    finally:
        spark.stop()
    return 0


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0 (hours, seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
    return value


def _report(args: argparse.Namespace) -> int:
    from medallion.contracts.layout import DataRoot
    from medallion.report import write_report

    check_data_root(args.data, writes=args.out is None, must_exist=True)
    if args.out is not None:
        check_output_file(args.out)
    out = write_report(DataRoot(args.data), args.out)
    print(f"report written to {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from medallion.bench import run_bench

    run_bench(args.only, quick=args.quick, out=args.out, conf=spark_settings(args), log_level=args.log_level)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from medallion.demo import DemoArgs, run_demo

    check_data_root(args.data, writes=True)
    return run_demo(DemoArgs(data=args.data, scenario=args.scenario, profile=args.profile, seed=args.seed,
                             batches=args.batches, master=args.master, conf=spark_settings(args),
                             log_level=args.log_level))


def _setup(args: argparse.Namespace) -> int:
    from medallion.bootstrap import setup

    return setup(check=args.check, jars_only=args.jars_only)


def _package(args: argparse.Namespace) -> int:
    from medallion.package import package

    package(args.out)
    return 0


def _jars(args: argparse.Namespace) -> int:
    from spark_jobs.jars import jar_paths

    paths = [str(p) for p in jar_paths()]
    print(",".join(paths) if args.csv else "\n".join(paths))
    return 0


DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"


def _completion(args: argparse.Namespace) -> int:
    from medallion.completion import bash_script

    print(bash_script(build_parser(), {"--only": BENCH_GROUPS}), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; `medallion <command> --help` documents each command."""
    parser = argparse.ArgumentParser(
        prog="medallion",
        description="Streaming lakehouse: generate -> bronze -> silver -> gold -> PostgreSQL + MySQL, then verify.",
        allow_abbrev=False,  # `--batch 1` must not pass for `--batches 1`
    )
    parser.add_argument("--version", action=VersionAction, help="show medallion's, Spark's, Delta's and Java's versions and exit")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                        help="log lines on stderr as text (default) or as JSON objects, one per line")
    # Every subcommand parser gets allow_abbrev=False too (argparse does not inherit it).
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_StrictParser)

    gen = commands.add_parser("generate", help="write seeded JSON Lines batches and their manifests")
    add_scenario_options(gen)
    gen.add_argument("--seed", type=int, required=True, help="random seed: same seed, same bytes")
    span = gen.add_mutually_exclusive_group()
    span.add_argument("--batches", type=int, help="write N batches, then stop")
    span.add_argument("--duration", type=float, help="run for SEC real seconds, then report throughput")
    gen.add_argument("--start", default=None,
                     help="simulated start instant, ISO-8601, or `now` for the current instant in UTC (default: the scenario's clock.start)")
    gen.add_argument("--speed", type=float, default=None, help="simulated seconds per real second; 0 = as fast as possible")
    gen.add_argument("--serve", default=None, metavar="HOST:PORT", help="serve the HTTP control API while generating")
    gen.add_argument("--entities", type=entity_names, default=None, metavar="NAME[,NAME...]",
                     help="write only these entities of the scenario (comma-separated; the bytes are those of a full run)")
    gen.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                     help="set one scenario field, repeatable: dotted PATH as in the file, VALUE as YAML "
                          "(e.g. --set clock.speed=90 --set entities.readings.arrival.rate=2); applied after --profile")
    gen.add_argument("--quiet", action="store_true", help="no progress display")
    gen.add_argument("--no-fsync", action="store_true", help="skip fsync of files (faster; a power cut may lose the last batches)")
    gen.set_defaults(handler=_generate)

    schema = commands.add_parser("schema", help="print the JSON Schema of scenario files (for editors)")
    schema.add_argument("--scenario", default=None, help="also validate this scenario and report problems")
    schema.set_defaults(handler=_schema)

    pipe = commands.add_parser("pipeline", help="run the streaming jobs bronze -> silver -> gold")
    add_scenario_options(pipe)
    add_mode_options(pipe)
    pipe.add_argument("--layers", default="bronze,silver,gold", help="comma-separated subset of bronze,silver,gold")
    pipe.add_argument("--metrics-address", default=DEFAULT_METRICS_ADDRESS, metavar="HOST:PORT",
                      help="with --continuous, serve Prometheus series at http://HOST:PORT/metrics "
                           f"(default {DEFAULT_METRICS_ADDRESS}; port 0 picks a free one)")
    add_master_option(pipe)
    pipe.set_defaults(handler=_pipeline)

    again = commands.add_parser(
        "reprocess", help="rebuild silver, quarantine, quality and gold from bronze (e.g. after a rule change)"
    )
    add_scenario_options(again)
    add_master_option(again)
    again.set_defaults(handler=_reprocess)

    exp = commands.add_parser("export", help="upsert gold tables into PostgreSQL and/or MySQL, exactly once")
    add_scenario_options(exp)
    add_target_option(exp)
    add_write_mode_option(exp)
    add_master_option(exp)
    exp.set_defaults(handler=_export)

    ver = commands.add_parser("verify", help="reconcile every table against the generator's ledger")
    add_scenario_options(ver)
    add_master_option(ver)
    ver.set_defaults(handler=_verify)

    keep = commands.add_parser(
        "retention", help="delete landing files already in bronze and VACUUM every Delta table, past an age"
    )
    add_scenario_options(keep)
    keep.add_argument("--older-than", type=non_negative_float, required=True, metavar="HOURS",
                      help="age in hours: landing files modified earlier and Delta files unreferenced since are deleted")
    keep.add_argument("--every", type=non_negative_float, default=None, metavar="SECONDS",
                      help="repeat every SECONDS until SIGTERM (default: one pass)")
    add_master_option(keep)
    keep.set_defaults(handler=_retention)

    rep = commands.add_parser("report", help="one HTML page: rows per layer, latency, micro-batches, ledger vs caught, quality (no Spark)")
    rep.add_argument("--data", required=True, type=Path, help="data root to report on (landing/, manifests/, lake/)")
    rep.add_argument("--out", type=Path, default=None, help="output file (default DATA/report.html)")
    rep.set_defaults(handler=_report)

    bench = commands.add_parser("bench", help="measure hot paths against baselines in the same run")
    bench.add_argument("--quick", action="store_true", help="smaller inputs, for CI")
    bench.add_argument("--only", type=bench_groups, default=None, metavar="GROUP[,GROUP...]",
                       help=f"comma-separated subset of the benchmark groups: {', '.join(BENCH_GROUPS)} (default all)")
    bench.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    add_spark_options(bench, master=False)
    bench.set_defaults(handler=_bench)

    demo = commands.add_parser("demo", help="everything end to end with embedded defaults")
    demo.add_argument("--data", type=Path, default=Path("demo-data"), help="data root (default ./demo-data, recreated)")
    demo.add_argument("--scenario", default="driving", help="scenario NAME or a YAML path (default driving)")
    demo.add_argument("--profile", default=None, help="profile overlay defined in the scenario (e.g. small)")
    demo.add_argument("--seed", type=non_negative_int, default=42, help="random seed, 0 or more (default 42)")
    demo.add_argument("--batches", type=positive_int, default=8, help="landing batches to generate, 1 or more (default 8)")
    add_master_option(demo)
    demo.set_defaults(handler=_demo)

    setup = commands.add_parser("setup", help="fetch jars and check the database servers (idempotent)")
    setup.add_argument("--check", action="store_true", help="only report what is missing")
    setup.add_argument("--jars-only", action="store_true", help="only fetch the jars (e.g. in an image without databases)")
    setup.set_defaults(handler=_setup)

    package = commands.add_parser("package", help="zip the project for spark-submit --py-files")
    package.add_argument("--out", type=Path, default=Path("dist/medallion-py.zip"),
                         help="zip file to write (default dist/medallion-py.zip)")
    package.set_defaults(handler=_package)

    jars = commands.add_parser("jars", help="print the jar paths Spark needs (for spark-submit --jars)")
    jars.add_argument("--csv", action="store_true", help="comma-separated, as --jars wants")
    jars.set_defaults(handler=_jars)

    complete = commands.add_parser("completion", help="print a shell completion script: eval \"$(medallion completion bash)\"")
    complete.add_argument("shell", nargs="?", choices=("bash",), default="bash", help="the shell (bash; zsh via bashcompinit)")
    complete.set_defaults(handler=_completion)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `medallion` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MedallionError as exc:
        print(f"medallion {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"medallion {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A full disk or a read-only mount found mid-run is the storage's doing, not a bug.
        if exc.errno not in STORAGE_ERRNOS:
            raise
        error = storage_error(exc, "a file")
        print(f"medallion {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as exc:
        # Spark reports a full disk as a Py4J error with a Java stack trace; one line is enough.
        text = str(exc)
        reason = next((marker for marker in _DISK_FULL_TEXT if marker in text), None)
        if reason is None:
            raise
        print(f"medallion {args.command}: error: {reason} while Spark was writing; free some space "
              "and run the command again (the jobs resume from their checkpoints)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
