"""The demo's screen: a timeline a person can follow, rendered with rich on a terminal, plain otherwise.

Every line is built here as a `rich.text.Text` by a pure function (unit-tested in
tests/unit/test_demo_screen.py); `Screen` prints it styled and cut to the terminal's width, or as plain
text, whole, when stdout is a file or a pipe (CI logs, `make demo | less`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from jobwatch.domain.humanize import format_progress
from jobwatch.domain.model import Transition
from jobwatch_devkit.slack_sink import ApiMessage, SlackThread

from .observe import Seen
from .routes import Dest, as_seen

MAX_LINE_CHARS = 118
"""Message texts are cut here (with `…`) in plain output too: the timeline shows first lines only."""
PLAIN_RULE_WIDTH = 100

EVENT_STYLES = {
    "QUEUED": "blue",
    "STARTED": "cyan",
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "CANCELED": "yellow",
    "LOST": "bold magenta",
    "STALLED": "yellow",
    "RESUMED": "cyan",
    "OVERDUE": "yellow",
    "UNREACHABLE": "red",
    "AUTH_FAILED": "red",
    "RECOVERED": "green",
}
MACHINE_DESTS = (Dest.WEBHOOK, Dest.BUS)
"""Destinations that receive JSON for programs: shown as a mark on the transition's line."""


def cut(text: str, limit: int = MAX_LINE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def setting_line(label: str, text: str) -> Text:
    line = Text().append(f"{label:<9}", style="bold")
    line.append(text)
    return line


def route_lines(routes: Sequence[tuple[str, str, str]]) -> list[Text]:
    """(name, match, destinations) per route, in columns."""
    name_width = max((len(name) for name, _, _ in routes), default=0)
    match_width = max((len(match) for _, match, _ in routes), default=0)
    lines = []
    for name, match, targets in routes:
        line = Text().append(f"  {name:<{name_width}}", style="bold")
        line.append(f"  {match:<{match_width}}  → ")
        line.append(targets, style="cyan")
        lines.append(line)
    return lines


# -- the timeline ------------------------------------------------------------------------------------------


def cycle_line(
    clock: str, cycle: int, polled: int, transitions: int, poll_errors: int, discovered: int = 0
) -> Text:
    line = Text().append(f"{clock}  ", style="dim")
    line.append(f"cycle {cycle:>2}", style="bold")
    line.append(f"  polled {polled} · {plural(transitions, 'transition')}")
    line.append(f" · {plural(poll_errors, 'poll error')}", style="red" if poll_errors else "")
    if discovered:
        line.append(f" · {discovered} discovered by the watch", style="cyan")
    return line


def phase_change(t: Transition) -> str:
    before = t.previous.phase.value if t.previous else "—"
    after = t.current.phase.value
    return f"{after}, phase kept" if before == after else f"{before} → {after}"


def transition_line(t: Transition, machine: Sequence[Seen], expected: Iterable[Dest]) -> Text:
    """`STARTED  weaviate-export nightly-export  — → RUNNING  45%   webhook ✓ EventBridge ✓`."""
    line = Text("  ▸ ")
    line.append(f"{t.event:<11}", style=EVENT_STYLES.get(t.event, "bold"))
    line.append(f" {t.source} {t.job_id}".ljust(42))
    progress = format_progress(t.current.progress) if t.current.progress is not None else ""
    line.append(f" {phase_change(t):<22} {progress:>5}")
    wanted = set(expected)
    for dest in MACHINE_DESTS:
        got = [s for s in machine if s.dest is dest]
        if not got and dest not in wanted:
            continue
        ok = len(got) == 1 and got[0].ok and dest in wanted
        line.append(f"  {dest.value} ", style="dim")
        line.append("✓" if ok else f"✗ ({len(got)})", style="green" if ok else "bold red")
    return line


def message_lines(seen: Sequence[Seen]) -> list[Text]:
    """People's messages of one transition: destinations that show the same first line share a line."""
    groups: dict[str, list[Seen]] = {}
    for item in seen:
        if item.dest not in MACHINE_DESTS:
            groups.setdefault(item.first_line, []).append(item)
    lines = []
    for first_line, items in groups.items():
        where = ", ".join(item.dest.value + (f" ({item.note})" if item.note else "") for item in items)
        icon = "✉" if items[0].dest is Dest.EMAIL else "↳"
        line = Text().append(f"      {icon} ", style="dim")
        line.append(where, style="bold")
        line.append("  " + cut(first_line, max(40, MAX_LINE_CHARS - len(where))))
        lines.append(line)
    return lines


def missing_line(expected: Iterable[Dest], seen: Sequence[Seen]) -> Text | None:
    """People's destinations a transition is routed to but has not reached (None: it reached them all)."""
    got = {item.dest for item in seen}
    missing = [dest.value for dest in expected if dest not in MACHINE_DESTS and dest not in got]
    if not missing:
        return None
    return Text(f"      ✗ not delivered to {', '.join(sorted(missing))}", style="bold red")


def note_line(text: str, style: str = "dim") -> Text:
    return Text(f"      · {cut(text)}", style=style)


def poll_error_line(who: str, error: str) -> Text:
    return note_line(f"poll error (logged, job unchanged) {who}: {error}", "red")


Status = tuple[str, float | None]
"""An upstream status word and progress, as last stored."""


def quiet_change_line(job: str, before: Status, now: Status, phase: str) -> Text:
    """A change inside one phase (TRANSFERRING -> TRANSFERRED, 40 % -> 80 %): stored, not a transition."""
    if before[0] == now[0]:
        change = f"{now[0]} {format_progress(before[1])} → {format_progress(now[1])}"
    else:
        change = f"{before[0]} → {now[0]}"
    return note_line(f"{job}: {change}, still {phase}: stored, nobody notified")


def upstream_line(text: str) -> Text:
    return Text(f"  ⇢ {cut(text)}", style="cyan")


# -- the end: the channels as people see them ----------------------------------------------------------


def root_line(root: ApiMessage) -> Text:
    """A thread's root as it stands after its last edit: state, job, progress (bar when known)."""
    state = as_seen(root.text).split(" · last change:", 1)[0]
    line = Text().append("● ", style="bold")
    line.append(cut(state, 90), style="bold")
    bar = progress_bar_of(root)
    if bar:
        line.append(f"  {bar}", style="green")
    edits = f"  (edited {times(root.edits)})" if root.edits else "  (never edited)"
    line.append(edits, style="dim")
    return line


def progress_bar_of(root: ApiMessage) -> str:
    """The ▓░ bar of a root's summary section, if it shows one."""
    for block in root.blocks:
        text = (block.get("text") or {}).get("text", "") if isinstance(block, dict) else ""
        for part in str(text).splitlines():
            if part[:1] in ("▓", "░"):
                return part.split(" ", 1)[0]
    return ""


def reply_line(reply: ApiMessage) -> Text:
    line = Text().append("    ↳ ", style="dim")
    line.append(cut(as_seen(reply.text), 100))
    if reply.reply_broadcast:
        line.append("  [also in the channel]", style="yellow")
    return line


def channel_lines(threads: Sequence[SlackThread]) -> list[Text]:
    lines: list[Text] = []
    for thread in threads:
        lines.append(root_line(thread.root))
        lines += [reply_line(reply) for reply in thread.replies]
    return lines or [Text("(empty)", style="red")]


def webhook_sample_line(event: Mapping[str, Any], headers: Mapping[str, str]) -> Text:
    """A verified request: whose event it carried, and the headers the receiver checked."""
    signature = headers.get("x-jobwatch-signature", "")
    return note_line(
        f"✓ {event.get('event')} {event.get('source')} {event.get('jobId')} · X-Jobwatch-Timestamp "
        f"{headers.get('x-jobwatch-timestamp')} · X-Jobwatch-Signature {signature[:15]}…"
    )


def bus_sample_line(envelope: Mapping[str, Any]) -> Text:
    """An event as a rule's target receives it: detail-type, what the detail says, resources."""
    detail = envelope.get("detail") or {}
    resources = ", ".join(envelope.get("resources") or [])
    return note_line(
        f"{envelope.get('detail-type')} · detail {detail.get('event')} {detail.get('source')} "
        f"{detail.get('jobId')} · resources {resources}"
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    title: str
    problems: tuple[str, ...]
    detail: str = ""
    """A second line: the counts behind the title."""

    @property
    def ok(self) -> bool:
        return not self.problems


def check_lines(results: Sequence[CheckResult], shown_per_check: int = 8) -> list[Text]:
    lines = []
    for result in results:
        line = Text().append("✓ " if result.ok else "✗ ", style="bold green" if result.ok else "bold red")
        line.append(result.title)
        lines.append(line)
        if result.detail:
            lines.append(Text(f"    {result.detail}", style="dim"))
        for problem in result.problems[:shown_per_check]:
            lines.append(Text(f"    PROBLEM: {problem}", style="red"))
        if len(result.problems) > shown_per_check:
            lines.append(Text(f"    … and {len(result.problems) - shown_per_check} more", style="red"))
    return lines


# -- printing ---------------------------------------------------------------------------------------------


class Screen:
    """Prints lines styled on a terminal (cut to its width), plain and whole anywhere else."""

    def __init__(self, file: TextIO | None = None, *, fancy: bool | None = None) -> None:
        self.file = file or sys.stdout
        self.fancy = self.file.isatty() if fancy is None else fancy
        self.console = Console(file=self.file, highlight=False, force_terminal=True) if self.fancy else None
        self.lines = 0

    def print(self, line: Text | str = "") -> None:
        self.lines += 1
        if self.console is None:
            self.file.write((line.plain if isinstance(line, Text) else line).rstrip() + "\n")
            self.file.flush()
            return
        self.console.print(line, no_wrap=True, overflow="ellipsis", crop=True)

    def print_all(self, lines: Iterable[Text | str]) -> None:
        for line in lines:
            self.print(line)

    def rule(self, title: str, *, heavy: bool = False) -> None:
        self.lines += 1
        if self.console is None:
            char = "═" if heavy else "─"
            self.file.write(f"{char * 3} {title} ".ljust(PLAIN_RULE_WIDTH, char) + "\n")
            return
        self.console.rule(Text(title, style="bold"), characters="═" if heavy else "─", align="left")
