"""A live progress line for `medallion generate` (rich), fed by the runner after each batch."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from generators.runner import RunReport
from generators.writer import WriteStats


class Progress:
    """Records/s, batches and records, as a rich progress display on stderr."""

    def __init__(self, total_batches: int | None, first_batch: int, label: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        columns: list[Any] = [TextColumn("[bold]{task.description}")]
        if total_batches is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns += [
            TextColumn("batch {task.fields[batch]}"),
            TextColumn("{task.fields[records]:,} records"),
            TextColumn("{task.fields[rate]:,.0f} records/s"),
            TimeElapsedColumn(),
        ]
        self._progress = RichProgress(*columns, console=Console(stderr=True), transient=False)
        total = None if total_batches is None else max(total_batches - first_batch, 0)
        self._task = self._progress.add_task(label, total=total, batch="-", records=0, rate=0.0)

    def __enter__(self) -> Progress:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, stats: WriteStats, report: RunReport) -> None:
        """Called by the runner after each batch."""
        self._progress.update(
            self._task,
            advance=1,
            batch=stats.batch_id,
            records=report.records,
            rate=report.records_per_second,
        )
