"""Running a send from the terminal: a live progress bar and a graceful stop on signals."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from mailer.delivery.dispatcher import DrainReport


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """An Event set by SIGTERM or the first Ctrl-C: threads finish and record the batch in
    flight, then the send exits cleanly. A second Ctrl-C interrupts at once."""
    stop = threading.Event()
    previous = {}

    def handler(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        Console(stderr=True).print("[yellow]Stopping after the batches in flight are "
                                   "recorded...[/yellow]")

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def progress_bar(total: int, enabled: bool = True
                 ) -> Iterator[Callable[[DrainReport], None] | None]:
    """A rich progress bar (sent, failed, rate, ETA) fed by the dispatcher's reports."""
    if not enabled or total == 0:
        yield None
        return
    columns = [TextColumn("[bold]Sending"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("sent {task.fields[sent]}"),
               TextColumn("failed {task.fields[failed]}"),
               TextColumn("{task.fields[rate]}/s"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("send", total=total, sent=0, failed=0, rate="0")

        def update(report: DrainReport) -> None:
            speed = progress.tasks[task].speed or 0
            progress.update(task, completed=report.sent + report.failed, sent=report.sent,
                            failed=report.failed, rate=f"{speed:,.0f}")

        yield update
