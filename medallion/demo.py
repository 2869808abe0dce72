"""`medallion demo`: the whole path with embedded defaults, in one command.

generate -> bronze -> silver -> gold (Delta) -> PostgreSQL + MariaDB/MySQL (throwaway servers
unless configured) -> verify against the ledger -> compare gold across Delta and both databases.
Prints what it did, where the data is and what to try next; exits non-zero if anything disagrees.
"""

from __future__ import annotations

import math
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from medallion.contracts.errors import MedallionError, VerificationFailed
from medallion.contracts.layout import DataRoot
from medallion.contracts.manifest import read_manifests
from medallion.contracts.paths import storage_error
from medallion.contracts.scenario import Scenario
from medallion.contracts.scenario_loader import load_scenario

console = Console(highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class DemoArgs:
    """What `medallion demo` is asked to do (its options, typed; the defaults are the CLI's)."""

    data: Path = Path("demo-data")
    scenario: str = "driving"
    profile: str | None = None
    seed: int = 42
    batches: int = 8
    master: str | None = None
    conf: dict[str, str] = field(default_factory=dict)  # --conf KEY=VALUE
    log_level: str | None = None


def _step(number: int, total: int, title: str) -> float:
    console.print(f"[bold cyan][{number}/{total}][/bold cyan] {title}")
    return time.perf_counter()


def _done(started: float, message: str) -> None:
    console.print(f"      {message} [dim]({time.perf_counter() - started:.1f}s)[/dim]")


DEMO_MARKER = ".medallion-demo"
_MARKER_TEXT = "medallion demo data root: `medallion demo --data` may empty and recreate this folder\n"
# What the demo (and the commands its summary suggests) write at the top of its data root.
_DEMO_ENTRIES = frozenset({"landing", "manifests", "lake", "report.html", DEMO_MARKER})


def _is_demo_root(root: Path) -> bool:
    marker = root / DEMO_MARKER
    # A symlinked marker proves nothing about this folder: it could point at any file.
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return marker.read_text(encoding="utf-8") == _MARKER_TEXT
    except (OSError, UnicodeDecodeError):
        return False


def _protected(root: Path) -> bool:
    """The file-system root, the home folder, the working folder or one of their ancestors."""
    precious = [Path("/"), Path.home().resolve(), Path.cwd().resolve()]
    return any(root == p or p.is_relative_to(root) for p in precious)


def fresh_data_root(path: Path) -> DataRoot:
    """Empty the demo's data root, deleting only what an earlier demo provably wrote.

    A folder counts as the demo's only when it holds the marker file `.medallion-demo` that
    this function writes into every data root it creates; then the demo's own entries
    (landing/, manifests/, lake/, report.html) are removed. A symlink among them is unlinked,
    never followed. Anything else — a folder without the marker, a marked one holding other
    entries, `/`, the home or working folder — is refused with the reason, untouched.

    Raises:
        MedallionError: the folder is not provably the demo's.
        StorageError: the folder cannot be written (full disk, read-only).
    """
    given = Path(path).expanduser()
    if given.is_symlink() and not given.exists():
        raise MedallionError(f"--data {given} is a symbolic link to nothing; pass a folder")
    root = given.resolve()
    if root.exists() and not root.is_dir():
        raise MedallionError(f"--data {given} is a file, not a folder; pass a folder for the demo's data")
    if _protected(root):
        raise MedallionError(
            f"--data {given} is {root}, the file-system root, the home or the working folder (or holds one "
            "of them); the demo recreates its data root, so pass a folder of its own, e.g. ./demo-data"
        )
    try:
        entries = sorted(p.name for p in root.iterdir()) if root.exists() else []
    except OSError as exc:
        raise storage_error(exc, f"the demo's data root {given}") from None
    if entries:
        if not _is_demo_root(root):
            raise MedallionError(
                f"--data {given} is not empty and was not created by `medallion demo` (no {DEMO_MARKER} "
                f"file; it holds {entries[:3]}); the demo only empties folders it created: pass a new "
                "or empty folder, or remove this one yourself"
            )
        unknown = [name for name in entries if name not in _DEMO_ENTRIES]
        if unknown:
            raise MedallionError(
                f"--data {given} holds {unknown[:3]}, which the demo did not write; nothing was deleted: "
                "move those away or pass another --data folder"
            )
    try:
        for name in entries:
            entry = root / name
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink()  # a link is removed, never followed
            else:
                shutil.rmtree(entry)
        root.mkdir(parents=True, exist_ok=True)
        (root / DEMO_MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    except OSError as exc:
        raise storage_error(exc, f"the demo's data root {given}") from None
    return DataRoot(root)


def _normalise(value: Any) -> Any:
    """One comparable form for a value read from Spark, psycopg or PyMySQL."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000)
    if isinstance(value, (float, Decimal)):
        number = float(value)
        return None if math.isnan(number) else round(number, 6)
    return value


def gold_rows_in_databases(spark: Any, scenario: Scenario, data: DataRoot, connections: dict[str, Any]) -> list[tuple[str, str, int, bool]]:
    """Per exported table and target: (table, target, rows, identical to the Delta table)."""
    from medallion.databases import dialect_for, run_sql

    rows: list[tuple[str, str, int, bool]] = []
    for table in scenario.export_tables:
        delta = spark.read.format("delta").load(str(data.table("gold", table)))
        columns = delta.columns
        expected = sorted(tuple(_normalise(v) for v in r) for r in delta.collect())
        rows.append((table, "delta", len(expected), True))
        for target, connection in connections.items():
            quote = dialect_for(connection.kind).quote
            fetched = run_sql(connection, f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)}")
            actual = sorted(tuple(_normalise(v) for v in r) for r in fetched)
            rows.append((table, target, len(actual), actual == expected))
    return rows


def layer_counts(spark: Any, scenario: Scenario, data: DataRoot) -> Table:
    """Rows per entity and layer, as a table."""
    table = Table(title="rows per layer")
    for column in ("table", "bronze", "silver", "quarantine", "gold"):
        table.add_column(column, justify="right" if column != "table" else "left")

    def count(layer: str, name: str) -> str:
        path = data.table(layer, name)
        return f"{spark.read.format('delta').load(str(path)).count():,}" if (path / "_delta_log").is_dir() else "-"

    for name in scenario.processing_order:
        table.add_row(name, count("bronze", name), count("silver", name), count("quarantine", name), "")
    for gold in scenario.gold:
        table.add_row(gold.name, "", "", "", count("gold", gold.name))
    return table


def run_demo(args: DemoArgs) -> int:
    """The demo itself; returns the exit code."""
    from generators.commands import GenerateArgs, generate
    from medallion.bootstrap import check_tools
    from medallion.local import open_connections
    from medallion.verify import render, verify
    from spark_jobs.config import export_config, pipeline_config
    from spark_jobs.export import export_gold
    from spark_jobs.jars import resolve_jars
    from spark_jobs.pipeline import run_pipeline
    from spark_jobs.session import build_session, options_from_args, spark_event_dir

    total = 6
    begun = time.perf_counter()
    scenario = load_scenario(args.scenario, profile=args.profile)
    console.print(
        f"[bold]medallion demo[/bold]: scenario [bold]{scenario.name}[/bold]"
        f"{f' (profile {args.profile})' if args.profile else ''}, seed {args.seed}, {args.batches} batches -> {args.data}/"
    )

    started = _step(1, total, "set-up check")
    resolve_jars(log=True)
    problems = check_tools()
    if problems:
        raise MedallionError("set-up incomplete:\n  " + "\n  ".join(problems) + "\nRun `make setup` (scripts/setup.sh).")
    _done(started, "jars, Java, PostgreSQL and MariaDB binaries present")

    started = _step(2, total, "generate landing files and the defect ledger")
    data = fresh_data_root(args.data)
    generate(GenerateArgs(scenario=args.scenario, data=data.root, seed=args.seed, profile=args.profile,
                          batches=args.batches, quiet=True))
    manifests = [m for name in scenario.processing_order for m in read_manifests(data, name)]
    lines = sum(m.lines for m in manifests)
    defects = sum(len(m.defects) for m in manifests)
    _done(started, f"{lines:,} lines in {len(manifests)} manifests, {defects:,} defects ledgered")

    started = _step(3, total, "pipeline bronze -> silver -> gold (Spark, --once)")
    session = options_from_args("medallion-demo", args, ui=True, event_log_dir=spark_event_dir(data))
    result = run_pipeline(pipeline_config(scenario, data), session)
    spark = build_session(session)  # the session the pipeline ran in, for the steps below
    timings = ", ".join(f"{layer} {seconds:.0f}s" for layer, seconds in result.seconds.items())
    alerts = f"; {len(result.alerts)} batch(es) below the quality threshold" if result.alerts else ""
    _done(started, f"{timings}{alerts}")

    with ExitStack() as stack:
        started = _step(4, total, "export gold to PostgreSQL and MariaDB/MySQL (exactly once)")
        cfg = export_config(scenario, data)
        connections = open_connections(scenario.export, cfg.targets, stack)
        export_gold(spark, cfg, connections, on_result=lambda r: console.print(f"      {r.describe()}"))
        _done(started, "exported")

        started = _step(5, total, "verify every table against the ledger")
        checks = verify(spark, scenario, data)
        failed = [c for c in checks if not c.ok]
        if failed:
            render(checks)
        _done(started, f"{len(checks) - len(failed)}/{len(checks)} checks hold")

        started = _step(6, total, "compare gold in Delta, PostgreSQL and MariaDB")
        compared = gold_rows_in_databases(spark, scenario, data, connections)
        agree = all(same for *_, same in compared)
        for table in scenario.export_tables:
            parts = [f"{target} {rows:,}{'' if same else ' (DIFFERENT)'}" for t, target, rows, same in compared if t == table]
            console.print(f"      {table}: " + " = ".join(parts))
        _done(started, "identical content" if agree else "[red]they disagree[/red]")
        servers = ", ".join(f"{k}: {c}" for k, c in connections.items())

    console.print(layer_counts(spark, scenario, data))
    console.print(f"[bold]Where the data is[/bold] ({time.perf_counter() - begun:.0f}s in all)")
    console.print(f"  landing files   {data.landing}/<entity>/")
    console.print(f"  ledger          {data.manifests}/<entity>/b<batch>.json")
    console.print(f"  Delta tables    {data.lake}/{{bronze,silver,quarantine,gold}}/<table>, quality in {data.quality}")
    console.print(f"  databases       {servers} (throwaway servers are stopped now)")
    console.print("[bold]Try next[/bold]")
    console.print(f"  medallion verify --scenario {args.scenario} --data {args.data}")
    console.print(f"  medallion report --data {args.data}          # throughput and quality plots")
    console.print("  medallion generate --scenario retail --seed 1 --data /tmp/retail --batches 4")
    console.print("  medallion pipeline --scenario driving --data DIR --continuous   # and generate with --speed 90")
    console.print("  medallion bench --quick")
    if failed:
        raise VerificationFailed(f"{len(failed)} of {len(checks)} verification checks failed (table above)")
    if not agree:
        raise VerificationFailed("gold differs between Delta and the databases")
    return 0
