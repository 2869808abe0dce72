"""`medallion report`: one self-contained HTML page about a data root, read without a JVM.

The Delta tables are read with delta-rs (`deltalake`) and polars, the ledger with the same
Spark-free code `medallion verify` uses, so the page takes seconds where starting Spark took
minutes. Plots are embedded as PNG: the file opens anywhere, no server needed.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections import Counter, defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.contracts.defects import Fate
from medallion.contracts.errors import MedallionError
from medallion.contracts.layout import LAYERS, DataRoot, parse_landing_name
from medallion.contracts.manifest import read_manifests
from medallion.contracts.paths import storage_error
from medallion.verify import ledger_fates

if TYPE_CHECKING:
    import polars as pl

SUMMARY_RULE = "_batch"  # the quality table's per-landing-batch summary row
LAYER_COLOURS = {"bronze": "#b8732e", "silver": "#7f8c99", "gold": "#d4a017", "other": "#555555"}


@dataclass(frozen=True)
class LedgerRow:
    """Ledger vs caught for one defect kind of one entity."""

    entity: str
    kind: str
    fate: str
    ledger: int
    caught: int | None  # None: the pipeline keeps such lines by design (nothing to catch)

    @property
    def ok(self) -> bool:
        return self.caught is None or self.caught == self.ledger


@dataclass
class LakeFacts:
    """Everything the page shows, read from the data root."""

    lines_landed: dict[str, int] = field(default_factory=dict)  # entity -> lines in landing files
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (layer, table) -> rows
    metrics: list[dict[str, Any]] = field(default_factory=list)
    quality: list[dict[str, Any]] = field(default_factory=list)
    quarantine_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (entity, rule)
    ledger: list[LedgerRow] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)  # entity, batch, landed_at, bronze_s, silver_s


# --- reading ------------------------------------------------------------------------------


def _is_delta(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def _read(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    import polars as pl

    return pl.read_delta(str(path), columns=columns)


def _count(path: Path) -> int:
    import polars as pl

    return int(pl.scan_delta(str(path)).select(pl.len()).collect().item())


def count_landing_lines(data: DataRoot) -> dict[str, int]:
    """Lines in the landing files, per entity (a line is what bronze turns into one row)."""
    counts: dict[str, int] = defaultdict(int)
    if not data.landing.is_dir():
        return {}
    for path in sorted(data.landing.glob("*/*.jsonl")):
        parsed = parse_landing_name(path.name)
        if parsed is None:
            continue
        with path.open("rb") as handle:
            counts[parsed[0]] += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return dict(counts)


def _landed_at(data: DataRoot) -> dict[tuple[str, int], float]:
    """When each (entity, batch) landed: the newest mtime of its files (they are renamed into
    the landing zone once written, so this is when the last one appeared)."""
    landed: dict[tuple[str, int], float] = {}
    if not data.landing.is_dir():
        return landed
    for path in data.landing.glob("*/*.jsonl"):
        parsed = parse_landing_name(path.name)
        if parsed is None:
            continue
        key = (parsed[0], parsed[1])
        landed[key] = max(landed.get(key, 0.0), path.stat().st_mtime)
    return landed


def quality_commit_times(data: DataRoot) -> dict[tuple[str, int], float]:
    """When the quality rows of each (entity, landing batch) were committed, from the Delta log:
    silver's micro-batch appends them last, after silver and the gold tables it feeds. Files a
    commit added but a vacuum removed since are skipped (the caller falls back to `_metrics`)."""
    import json

    import polars as pl

    times: dict[tuple[str, int], float] = {}
    log = data.quality / "_delta_log"
    for commit in sorted(log.glob("*.json")):
        at, added = None, []
        with commit.open(encoding="utf-8") as handle:
            for line in handle:
                action = json.loads(line)
                if "commitInfo" in action:
                    info = action["commitInfo"]
                    if info.get("operation") in ("WRITE", "STREAMING UPDATE") and "medallion_txn" in (info.get("userMetadata") or ""):
                        at = info["timestamp"] / 1000
                elif "add" in action and action["add"].get("dataChange", True):
                    added.append(data.quality / action["add"]["path"])
        if at is None:
            continue
        for path in added:
            if not path.is_file():
                continue
            for entity, batch in pl.read_parquet(path, columns=["entity", "batch_id"]).unique().iter_rows():
                times[(entity, batch)] = min(times.get((entity, batch), at), at)
    return times


def _latency(data: DataRoot, facts: LakeFacts) -> list[dict[str, Any]]:
    """Landing -> bronze and landing -> silver/gold seconds per landing batch.

    Bronze: the newest `_ingested_at` of the batch's rows. Silver and gold: the commit of the
    batch's quality rows (silver's micro-batch writes silver, then the gold tables it feeds, then
    those rows); where the log no longer has it, the end of that micro-batch in `_metrics`.
    """
    landed = _landed_at(data)
    committed = quality_commit_times(data) if _is_delta(data.quality) else {}
    silver_end: dict[tuple[str, int], float] = {}
    for row in facts.metrics:
        if row["trigger_ms"] is None or row["timestamp"] is None:
            continue
        end = row["timestamp"].timestamp() + row["trigger_ms"] / 1000
        key = (row["query"], row["batch_id"])
        silver_end[key] = max(silver_end.get(key, 0.0), end)
    promoted: dict[tuple[str, int], float] = dict(committed)
    for row in facts.quality:
        if row["rule"] == SUMMARY_RULE and (row["entity"], row["batch_id"]) not in committed:
            end = silver_end.get((f"silver_{row['entity']}", row["micro_batch_id"]))
            if end is not None:
                key = (row["entity"], row["batch_id"])
                promoted[key] = max(promoted.get(key, 0.0), end)
    out = []
    for entity in sorted({e for e, _ in landed}):
        bronze_at: dict[int, float] = {}
        path = data.table("bronze", entity)
        if _is_delta(path):
            import polars as pl

            frame = _read(path, ["_batch_id", "_ingested_at"]).group_by("_batch_id").agg(pl.col("_ingested_at").max())
            bronze_at = {b: t.timestamp() for b, t in frame.iter_rows() if t is not None}
        for (e, batch), at in sorted(landed.items()):
            if e != entity:
                continue
            out.append({
                "entity": entity, "batch": batch, "landed_at": at,
                "bronze_s": bronze_at[batch] - at if batch in bronze_at else None,
                "silver_s": promoted[(entity, batch)] - at if (entity, batch) in promoted else None,
            })
    return out


def _ledger(data: DataRoot, facts: LakeFacts, quarantine_kinds: dict[str, Counter[str]]) -> list[LedgerRow]:
    """The generator's ledger per entity and kind against what the pipeline caught: quarantine
    rows carrying the kind, and duplicates removed (the quality table), as `verify` checks them."""
    duplicates_removed: Counter[str] = Counter()
    for row in facts.quality:
        if row["rule"] == SUMMARY_RULE:
            duplicates_removed[row["entity"]] += row["duplicate_rows"] or 0
    rows = []
    entities = sorted(p.name for p in data.manifests.iterdir() if p.is_dir()) if data.manifests.is_dir() else []
    for entity in entities:
        expected: Counter[tuple[str, Fate]] = Counter()
        for manifest in read_manifests(data, entity):
            for _, defect_kind, defect_fate in ledger_fates(manifest):
                expected[(str(defect_kind), defect_fate)] += 1
        for (kind, fate), count in sorted(expected.items()):
            caught: int | None
            if fate == Fate.QUARANTINE:
                caught = quarantine_kinds.get(entity, Counter())[kind]
            elif fate == Fate.DEDUPE:
                caught = duplicates_removed[entity]
            else:
                caught = None
            rows.append(LedgerRow(entity, kind, str(fate), count, caught))
    return rows


# The columns the report reads from the two shared tables (written by spark_jobs: see the table
# contracts in docs/design.md §3.6).
METRICS_COLUMNS = ("query", "batch_id", "timestamp", "num_input_rows", "processed_rows_per_second", "trigger_ms")
QUALITY_COLUMNS = ("entity", "batch_id", "micro_batch_id", "rule", "checked", "passed", "duplicate_rows")


def _with_columns(frame: Any, columns: tuple[str, ...], path: Path) -> Any:
    """`frame`, or MedallionError naming the table and what it lacks (a table another tool or an
    older version wrote there)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MedallionError(f"{path} lacks the column(s) {', '.join(missing)}: it was not written by this version "
                             "of medallion; run the pipeline into a fresh data root (or remove that table) and report again")
    return frame


def read_facts(data: DataRoot) -> LakeFacts:
    """Read the landing zone, the manifests and every Delta table of the lake (no Spark).

    Raises:
        MedallionError: the lake holds neither `_metrics` nor `quality` (nothing ran yet).
    """
    if not _is_delta(data.metrics) and not _is_delta(data.quality):
        raise MedallionError(f"no lake/_metrics or lake/quality under {data.root}; run `medallion pipeline` first")
    facts = LakeFacts(lines_landed=count_landing_lines(data))
    for layer in LAYERS:
        folder = data.lake / layer
        if folder.is_dir():
            for table in sorted(folder.iterdir()):
                if _is_delta(table):
                    facts.rows[(layer, table.name)] = _count(table)
    if _is_delta(data.metrics):
        facts.metrics = _with_columns(_read(data.metrics), METRICS_COLUMNS, data.metrics).to_dicts()
    if _is_delta(data.quality):
        facts.quality = _with_columns(_read(data.quality), QUALITY_COLUMNS, data.quality).to_dicts()
    quarantine_kinds: dict[str, Counter[str]] = {}
    for layer, entity in facts.rows:
        if layer != "quarantine":
            continue
        frame = _read(data.table("quarantine", entity), ["_reasons", "_kinds"])
        kinds: Counter[str] = Counter()
        for reasons, row_kinds in frame.iter_rows():
            for reason in reasons or []:
                facts.quarantine_reasons[(entity, reason)] += 1
            for kind in set(row_kinds or []):
                kinds[kind] += 1
        quarantine_kinds[entity] = kinds
    facts.ledger = _ledger(data, facts, quarantine_kinds)
    facts.latency = _latency(data, facts)
    return facts


# --- figures ------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _integer_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _legend_outside(ax: Any, **kwargs: Any) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0, **kwargs)


def _layer_of(query: str) -> str:
    prefix = query.split("_", 1)[0]
    return prefix if prefix in LAYER_COLOURS else "other"


def micro_batch_figure(metrics: list[dict[str, Any]]) -> Any:
    """Duration and rows/s of every micro-batch in start order, coloured by layer."""
    plt = _pyplot()
    ordered = sorted(metrics, key=lambda r: r["timestamp"])
    figure, (time_ax, rate_ax) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    xs = list(range(1, len(ordered) + 1))
    colours = [LAYER_COLOURS[_layer_of(r["query"])] for r in ordered]
    time_ax.bar(xs, [(r["trigger_ms"] or 0) / 1000 for r in ordered], color=colours)
    rate_ax.bar(xs, [r["processed_rows_per_second"] or 0 for r in ordered], color=colours)
    time_ax.set_ylabel("duration (s)")
    time_ax.set_title("Micro-batches in start order (numbers as in the table below)")
    rate_ax.set_ylabel("rows / s processed")
    rate_ax.set_xlabel("micro-batch (start order)")
    _integer_axis(rate_ax.xaxis)
    from matplotlib.patches import Patch

    layers = [name for name in LAYER_COLOURS if any(_layer_of(r["query"]) == name for r in ordered)]
    time_ax.legend(handles=[Patch(color=LAYER_COLOURS[n], label=n) for n in layers], loc="upper left",
                   bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0, title="layer")
    figure.tight_layout()
    return figure


def latency_figure(latency: list[dict[str, Any]]) -> Any:
    """Seconds from landing to bronze (dashed) and to silver + gold (solid), per landing batch."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(10, 3.8))
    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in latency:
        by_entity[row["entity"]].append(row)
    markers = "osD^v<>"
    for i, (entity, rows) in enumerate(sorted(by_entity.items())):
        colour = f"C{i}"
        for measure, style, label in (("silver_s", "-", "silver + gold"), ("bronze_s", "--", "bronze")):
            points = [(r["batch"], r[measure]) for r in rows if r[measure] is not None]
            if points:
                ax.plot(*zip(*points, strict=True), style, marker=markers[i % len(markers)], color=colour,
                        label=f"{entity}: {label}")
    ax.set_xlabel("landing batch")
    ax.set_ylabel("seconds after landing")
    ax.set_title("Landing -> lake latency per landing batch")
    _integer_axis(ax.xaxis)
    _legend_outside(ax)
    figure.tight_layout()
    return figure


def ledger_figure(ledger: list[LedgerRow]) -> Any:
    """Ledger vs caught per (entity, kind), mismatches in red."""
    plt = _pyplot()
    rows = [r for r in ledger if r.caught is not None]
    figure, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.2))
    ys = list(range(len(rows)))
    ax.barh([y + 0.2 for y in ys], [r.ledger for r in rows], height=0.4, color="#4c72b0", label="ledger (generator)")
    ax.barh([y - 0.2 for y in ys], [r.caught or 0 for r in rows], height=0.4,
            color=["#55a868" if r.ok else "#c0392b" for r in rows], label="caught (pipeline)")
    for y, row in zip(ys, rows, strict=True):
        ax.annotate(f"{row.ledger:,} / {row.caught or 0:,}", (max(row.ledger, row.caught or 0), y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=7)
    ax.margins(x=0.12)
    ax.set_yticks(ys, [f"{r.entity}: {r.kind}" for r in rows], fontsize=8)
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if not row.ok:
            tick.set_color("#c0392b")
    ax.invert_yaxis()
    ax.set_xlabel("lines")
    ax.set_title("Ledger vs caught (green: equal, red: mismatch)")
    _legend_outside(ax)
    figure.tight_layout()
    return figure


def quarantine_figure(reasons: Counter[tuple[str, str]]) -> Any:
    """Quarantined rows by rule, one bar per (entity, rule)."""
    plt = _pyplot()
    items = sorted(reasons.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    figure, ax = plt.subplots(figsize=(10, 0.3 * len(items) + 1.2))
    entities = sorted({e for (e, _), _ in items})
    colour = {e: f"C{i}" for i, e in enumerate(entities)}
    ax.barh(range(len(items)), [n for _, n in items], color=[colour[e] for (e, _), _ in items])
    ax.set_yticks(range(len(items)), [f"{e}: {r}" for (e, r), _ in items], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("quarantined rows (a row may break several rules)")
    ax.set_title("Quarantine by rule and entity")
    figure.tight_layout()
    return figure


def quality_figure(quality: list[dict[str, Any]]) -> Any:
    """Quality score (share of lines kept) per landing batch: one panel per entity, on a shared
    scale, so entities that score alike cannot hide each other."""
    plt = _pyplot()
    cells: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in quality:
        if row["rule"] == SUMMARY_RULE:
            cell = cells[row["entity"]][row["batch_id"]]
            cell[0] += row["passed"] or 0
            cell[1] += row["checked"] or 0
    entities = sorted(cells)
    figure, axes = plt.subplots(1, len(entities), figsize=(10, 3.4), sharey=True, squeeze=False)
    for i, (ax, entity) in enumerate(zip(axes[0], entities, strict=True)):
        batches = cells[entity]
        xs = sorted(batches)
        ys = [batches[b][0] / batches[b][1] if batches[b][1] else 1.0 for b in xs]
        ax.plot(xs, ys, "-", marker="o", color=f"C{i}")
        ax.set_title(entity, fontsize=10)
        ax.set_xlabel("landing batch")
        ax.grid(alpha=0.3)
        _integer_axis(ax.xaxis)
    axes[0][0].set_ylabel("share of lines kept")
    figure.suptitle("Quality score per landing batch")
    figure.tight_layout()
    return figure


# --- page -----------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;max-width:1160px;margin:1.5em auto;padding:0 16px;color:#222}
img{width:100%;height:auto;display:block;margin:0.5em 0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:14px;max-width:100%}
td,th{padding:3px 10px;border-bottom:1px solid #ddd}
th,td{text-align:left}td.n,th.n{text-align:right}
tr.bad td,tr.bad th{color:#c0392b;font-weight:bold}
code,p{overflow-wrap:anywhere}
.headline{font-size:1.15em}
.note{color:#555;font-size:0.92em}
"""


def _img(alt: str, figure: Any) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{_png(figure)}'>"


def _table(header: list[str], rows: list[list[Any]], bad: list[bool] | None = None) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return html.escape(str(value))

    numeric = [bool(rows) and all(isinstance(r[i], int | float) or r[i] is None for r in rows) for i in range(len(header))]
    out = ["<table><tr>" + "".join(f"<th{' class=n' if numeric[i] else ''}>{html.escape(h)}</th>" for i, h in enumerate(header)) + "</tr>"]
    for i, row in enumerate(rows):
        css = " class='bad'" if bad and bad[i] else ""
        out.append(f"<tr{css}>" + "".join(f"<td{' class=n' if numeric[j] else ''}>{cell(v)}</td>" for j, v in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def build_html(facts: LakeFacts, data: DataRoot) -> str:
    """The whole report page."""
    landed = sum(facts.lines_landed.values())
    rows_in = {layer: sum(n for (lay, _), n in facts.rows.items() if lay == layer) for layer in LAYERS}
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'><title>medallion report</title>",
        f"<style>{_CSS}</style><body>",
        f"<h1>medallion report</h1><p>data root <code>{html.escape(str(data.root))}</code>, "
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}</p>",
        f"<p class='headline' id='headline'><b id='lines-landed'>{landed:,}</b> lines landed; "
        f"bronze <b>{rows_in['bronze']:,}</b> rows, silver <b>{rows_in['silver']:,}</b>, "
        f"quarantine <b>{rows_in['quarantine']:,}</b>, gold <b>{rows_in['gold']:,}</b>.</p>",
        "<h2>Rows per layer</h2>",
    ]
    entities = sorted(set(facts.lines_landed) | {t for (lay, t) in facts.rows if lay != "gold"})
    parts.append(_table(
        ["entity", "lines landed", "bronze", "silver", "quarantine"],
        [[e, facts.lines_landed.get(e, 0), facts.rows.get(("bronze", e)), facts.rows.get(("silver", e)),
          facts.rows.get(("quarantine", e))] for e in entities],
    ))
    gold = sorted(t for (lay, t) in facts.rows if lay == "gold")
    if gold:
        parts.append(_table(["gold table", "rows"], [[t, facts.rows[("gold", t)]] for t in gold]))

    parts.append("<h2>Ledger vs caught</h2>")
    if facts.ledger:
        bad = [not r.ok for r in facts.ledger]
        wrong = sum(bad)
        parts.append(f"<p>{'All' if not wrong else f'<b>{wrong}</b> of'} {len(facts.ledger)} (entity, kind) pairs "
                     f"{'match' if not wrong else 'differ (red)'}. Ledger: the defects the generator recorded in its "
                     "manifests; caught: quarantine rows carrying the kind, or duplicates the quality table says "
                     "silver removed. Kinds silver keeps by design (late, out of order, an added field) have "
                     "nothing to catch.</p>")
        if any(r.caught is not None for r in facts.ledger):
            parts.append(_img("ledger vs caught", ledger_figure(facts.ledger)))
        parts.append(_table(
            ["entity", "kind", "fate", "ledger", "caught", "ok"],
            [[r.entity, r.kind, r.fate, r.ledger, r.caught if r.caught is not None else "kept by design",
              "yes" if r.ok else "MISMATCH"] for r in facts.ledger],
            bad,
        ))
    else:
        parts.append("<p>No manifests under this data root: nothing to compare.</p>")

    parts.append("<h2>Latency: landing -> lake</h2>")
    if any(r["bronze_s"] is not None or r["silver_s"] is not None for r in facts.latency):
        parts.append(
            "<p class='note'>From the newest mtime of a batch's landing files to its newest bronze "
            "<code>_ingested_at</code>, and to the Delta commit of its quality rows, which silver's "
            "micro-batch appends after writing silver and the gold tables that silver table feeds: for "
            "the entities gold reads this is landing -> gold (where the log no longer names that commit, "
            "the end of the silver micro-batch in <code>_metrics</code> stands in). A batch that landed "
            "before the pipeline started counts the wait. A gold table with its own query is not timed: "
            "its commits name no landing batch.</p>")
        parts.append(_img("latency", latency_figure(facts.latency)))
        parts.append(_table(
            ["entity", "landing batch", "landed (UTC)", "to bronze (s)", "to silver + gold (s)"],
            [[r["entity"], r["batch"], f"{datetime.fromtimestamp(r['landed_at'], UTC):%H:%M:%S}", r["bronze_s"],
              r["silver_s"]] for r in facts.latency],
        ))
    else:
        parts.append("<p>No landing files or no processed batches: latency cannot be derived.</p>")

    if facts.metrics:
        ordered = sorted(facts.metrics, key=lambda r: r["timestamp"])
        recorded = {(r["query"], r["batch_id"]) for r in ordered}
        missing = sorted({f"silver_{r['entity']} #{r['micro_batch_id']}" for r in facts.quality
                          if r["rule"] == SUMMARY_RULE and (f"silver_{r['entity']}", r["micro_batch_id"]) not in recorded})
        gap = (f" Silver micro-batches that wrote quality rows but have no <code>_metrics</code> row: "
               f"{html.escape(', '.join(missing))}." if missing else "")
        parts.append(f"<h2>Micro-batches</h2><p>{len(ordered)} micro-batches in <code>lake/_metrics</code>.{gap}</p>")
        parts.append(_img("micro-batches", micro_batch_figure(ordered)))
        parts.append(_table(
            ["#", "query", "batch", "start (UTC)", "input rows", "seconds", "rows / s"],
            [[i, r["query"], r["batch_id"], f"{r['timestamp']:%Y-%m-%d %H:%M:%S}", r["num_input_rows"],
              (r["trigger_ms"] or 0) / 1000, r["processed_rows_per_second"]] for i, r in enumerate(ordered, start=1)],
        ))

    if facts.quarantine_reasons:
        parts.append("<h2>Quarantine by rule</h2>")
        parts.append(_img("quarantine by rule", quarantine_figure(facts.quarantine_reasons)))
        parts.append(_table(["entity", "rule", "rows"],
                            [[e, r, n] for (e, r), n in sorted(facts.quarantine_reasons.items())]))

    if any(r["rule"] == SUMMARY_RULE for r in facts.quality):
        parts.append("<h2>Quality over batches</h2>")
        parts.append(_img("quality", quality_figure(facts.quality)))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(data: DataRoot, out: Path | None) -> Path:
    """`medallion report` as a library call: read the data root, write the page to `out`
    (default DATA/report.html); returns where it went.

    Raises:
        MedallionError: neither `_metrics` nor `quality` exists yet.
        StorageError: the page could not be written (the old report, if any, is left whole).
    """
    page = build_html(read_facts(data), data)
    out = Path(out) if out else data.root / "report.html"
    # Written next to the target and renamed over it: a full disk leaves the old report whole.
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, out)
    except OSError as exc:
        with suppress(OSError):
            partial.unlink()
        raise storage_error(exc, f"the report {out}") from None
    return out
