"""`medallion report`: throughput and quality plots from `lake/_metrics` and `lake/quality`.

One self-contained HTML file (plots embedded as PNG) that opens anywhere, no server needed.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medallion.contracts.errors import MedallionError
from medallion.contracts.layout import DataRoot
from medallion.contracts.paths import storage_error

if TYPE_CHECKING:
    from spark_jobs.session import SessionOptions


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def throughput_figure(metrics: list[dict[str, Any]]) -> Any:
    """Rows per second and trigger duration of every micro-batch, per query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rate_ax, time_ax) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    by_query: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in metrics:
        by_query[row["query"]].append(row)
    for query, rows in sorted(by_query.items()):
        rows.sort(key=lambda r: r["timestamp"])
        times = [r["timestamp"] for r in rows]
        rate_ax.plot(times, [r["processed_rows_per_second"] or 0 for r in rows], marker=".", label=query)
        time_ax.plot(times, [(r["trigger_ms"] or 0) / 1000 for r in rows], marker=".", label=query)
    rate_ax.set_ylabel("rows / s processed")
    rate_ax.set_title("Throughput per micro-batch")
    time_ax.set_ylabel("trigger duration (s)")
    time_ax.set_xlabel("micro-batch start (UTC)")
    rate_ax.legend(fontsize=7, ncol=3)
    figure.autofmt_xdate()
    return figure


def quality_figure(quality: list[dict[str, Any]]) -> Any:
    """Quality score per landing batch per entity, and failures by defect kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (score_ax, kind_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    scores: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in quality:
        if row["rule"] == "_batch":
            cell = scores[row["entity"]][row["batch_id"]]
            cell[0] += row["passed"]
            cell[1] += row["checked"]
        elif row["failed"]:
            kinds[row["entity"]][row["kind"]] += row["failed"]
    for entity, batches in sorted(scores.items()):
        xs = sorted(batches)
        score_ax.plot(xs, [batches[b][0] / batches[b][1] if batches[b][1] else 1.0 for b in xs], marker="o", label=entity)
    from matplotlib.ticker import MaxNLocator

    score_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    score_ax.set_title("Quality score per landing batch")
    score_ax.set_xlabel("batch")
    score_ax.set_ylabel("share of lines kept")
    score_ax.legend(fontsize=8)
    all_kinds = sorted({k for per in kinds.values() for k in per})
    bottom = [0] * len(all_kinds)
    for entity, per in sorted(kinds.items()):
        values = [per.get(k, 0) for k in all_kinds]
        kind_ax.bar(all_kinds, values, bottom=bottom, label=entity)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    kind_ax.set_title("Rows failing a rule, by kind")
    kind_ax.tick_params(axis="x", rotation=35)
    kind_ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def build_html(metrics: list[dict[str, Any]], quality: list[dict[str, Any]], data: DataRoot) -> str:
    """The whole report page."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>medallion report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>",
        f"<h1>medallion report</h1><p>data root <code>{html.escape(str(data.root))}</code>, "
        f"generated {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}</p>",
    ]
    if metrics:
        rows = sum(r["num_input_rows"] for r in metrics)
        parts.append(f"<h2>Throughput</h2><p>{len(metrics)} micro-batches, {rows:,} input rows.</p>")
        parts.append(f"<img alt='throughput' src='data:image/png;base64,{_png(throughput_figure(metrics))}'>")
    if quality:
        parts.append("<h2>Quality</h2>")
        parts.append(f"<img alt='quality' src='data:image/png;base64,{_png(quality_figure(quality))}'>")
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for row in quality:
            if row["rule"] == "_batch":
                t = totals[row["entity"]]
                for i, name in enumerate(("bronze_rows", "silver_rows", "quarantine_rows", "duplicate_rows", "dropped_rows")):
                    t[i] += row[name] or 0
        parts.append("<table><tr><th>entity</th><th>bronze</th><th>silver</th><th>quarantine</th><th>duplicates</th><th>dropped</th></tr>")
        for entity, t in sorted(totals.items()):
            cells = "".join(f"<td>{v:,}</td>" for v in t)
            parts.append(f"<tr><th>{html.escape(entity)}</th>{cells}</tr>")
        parts.append("</table>")
    return "\n".join(parts)


def write_report(data: DataRoot, out: Path | None, session: SessionOptions) -> Path:
    """`medallion report` as a library call: read `_metrics` and `quality`, write the page to
    `out` (default DATA/report.html); returns where it went.

    Raises:
        MedallionError: neither table exists yet.
        StorageError: the page could not be written (the old report, if any, is left whole).
    """
    from spark_jobs.session import build_session
    from spark_jobs.storage import read_delta

    spark = build_session(session)
    metrics_df = read_delta(spark, str(data.metrics))
    quality_df = read_delta(spark, str(data.quality))
    if metrics_df is None and quality_df is None:
        raise MedallionError(f"no lake/_metrics or lake/quality under {data.root}; run `medallion pipeline` first")
    metrics = [r.asDict() for r in metrics_df.collect()] if metrics_df is not None else []
    quality = [r.asDict() for r in quality_df.collect()] if quality_df is not None else []
    out = Path(out) if out else data.root / "report.html"
    page = build_html(metrics, quality, data)
    # Written next to the target and renamed over it: a full disk leaves the old report whole.
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(out)
    except OSError as exc:
        with suppress(OSError):
            partial.unlink()
        raise storage_error(exc, f"the report {out}") from None
    return out
