"""rich renderings for a terminal: the `list` table and the live `follow` view.

Only used when stdout is a terminal; every cell is stored or upstream text, so it goes in as a
`Text` (never parsed as rich markup) after `terminal_safe` (no escape sequence reaches the screen).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from jobwatch.domain.text import terminal_safe
from jobwatch_tools.followed import Followed, outcome_text, row_of
from jobwatch_tools.terminal import BAR_WIDTH, clamp_progress

PHASE_STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "CANCELED": "yellow",
    "LOST": "magenta",
    "UNTRACKED": "magenta",
    "RUNNING": "cyan",
}


def safe(value: object) -> Text:
    return Text(terminal_safe(value))


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO | None = None) -> None:
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*(safe(cell) for cell in row))
    Console(file=stream).print(table)


def progress_renderable(progress: float | None, percent: str) -> RenderableType:
    value = clamp_progress(progress)
    if value is None:
        return safe(percent or "n/a")
    bar = ProgressBar(total=100, completed=value, width=BAR_WIDTH)
    table = Table.grid(padding=(0, 1))
    table.add_row(bar, Text(percent))
    return table


def follow_table(jobs: Sequence[Followed], now: datetime) -> Table:
    table = Table("JOB", "PHASE", "PROGRESS", "ROWS/OBJECTS", "ELAPSED", "LAST CHANGE", "ETA", box=None)
    for job in jobs:
        row = row_of(job, now)
        phase = Text(row.phase, style=PHASE_STYLES.get(row.phase, ""))
        cells: list[RenderableType] = [safe(row.name), phase, progress_renderable(row.progress, row.percent)]
        cells += [safe(row.volume), safe(row.elapsed), safe(row.last_change), safe(row.eta)]
        table.add_row(*cells)
        if row.note:
            table.add_row(Text(""), safe(row.note), style="dim")
    return table


class LiveView:
    """A table redrawn in place each refresh; the last frame stays on screen at the end."""

    def __init__(self, stream: TextIO, interval_s: float) -> None:
        self.console = Console(file=stream)
        self.interval_s = interval_s
        self.live: Live | None = None

    def _frame(self, jobs: Sequence[Followed], now: datetime, footer: str) -> RenderableType:
        return Group(follow_table(jobs, now), Text(footer, style="dim"))

    def show(self, jobs: Sequence[Followed], changed: Sequence[Followed], now: datetime) -> None:
        footer = f"refreshed {now.strftime('%H:%M:%S')} UTC, every {self.interval_s:g}s; Ctrl-C stops"
        frame = self._frame(jobs, now, footer)
        if self.live is None:
            self.live = Live(frame, console=self.console, auto_refresh=False)
            self.live.start()
        self.live.update(frame, refresh=True)

    def finish(self, jobs: Sequence[Followed], now: datetime, timed_out: bool) -> None:
        if self.live is not None:
            self.live.update(self._frame(jobs, now, outcome_text(jobs, timed_out)), refresh=True)
        self.close()

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
