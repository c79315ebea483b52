"""The demo's screen: plain lines off a terminal, styled and cut to width on one; each transition's
messages grouped by what a person sees first; each Slack channel as one root per job with its replies;
the routes as a table; and the self-check naming what is missing, doubled or stray."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.text import Text

from jobwatch.channels.base import Notice
from jobwatch.channels.slack_app import render
from jobwatch.domain.model import Event, JobSpec, Phase, Snapshot, Transition
from jobwatch.domain.routing import Route, route
from jobwatch.domain.severity import severity_for
from jobwatch_devkit.demo.checks import Outcome, check_routing, check_team_channel
from jobwatch_devkit.demo.observe import Seen, carries
from jobwatch_devkit.demo.routes import (
    ONCALL_GROUP,
    Dest,
    as_seen,
    describe_route,
    expected_destinations,
    routes_document,
)
from jobwatch_devkit.demo.screen import (
    CheckResult,
    Screen,
    channel_lines,
    check_lines,
    message_lines,
    missing_line,
    route_lines,
    transition_line,
)
from jobwatch_devkit.slack_sink import ApiMessage, SlackThread

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPEC = JobSpec(
    source="milvus-import",
    endpoint="https://milvus.example.com",
    job_id="458021734452345602",
    labels={"team": "search"},
    options={"dbName": "analytics"},
)


def transition(
    event: str, version: int, phase: Phase, previous: Phase | None, spec: JobSpec = SPEC
) -> Transition:
    return Transition(
        transition_id=f"{spec.key}#lx2k9a0b1xyz-{version}",
        job_key=spec.key,
        source=spec.source,
        job_id=spec.job_id,
        event=event,
        severity=severity_for(event),
        occurred_at="2026-11-20T09:41:07Z",
        job=spec,
        previous=None if previous is None else Snapshot(phase=previous, status="Importing", progress=40.0),
        current=Snapshot(
            phase=phase, status=event.title(), progress=45.0 if phase is Phase.RUNNING else None
        ),
        previous_transition_id=None if version == 1 else f"{spec.key}#lx2k9a0b1xyz-{version - 1}",
    )


STARTED = transition("STARTED", 1, Phase.RUNNING, None)
FAILED = transition("FAILED", 2, Phase.FAILED, Phase.RUNNING)


def thread(*transitions: Transition, mentions: tuple[str, ...] = ()) -> SlackThread:
    """A channel thread as the Slack app channel leaves it: the root edited to the last transition."""
    payloads = [render(Notice(t, mentions)) for t in transitions]
    last = payloads[-1].root
    root = ApiMessage("C0SEARCH01", "1.000001", last["text"], last["blocks"], edits=len(transitions) - 1)
    replies = tuple(
        ApiMessage(
            "C0SEARCH01",
            f"1.00000{n + 2}",
            p.reply["text"],
            p.reply["blocks"],
            thread_ts=root.ts,
            reply_broadcast=p.broadcast,
        )
        for n, p in enumerate(payloads)
    )
    return SlackThread(root, replies)


def printed(*lines: Text | str, fancy: bool = False) -> str:
    out = io.StringIO()
    screen = Screen(out, fancy=fancy)
    screen.print_all(lines)
    return out.getvalue()


# -- the screen -----------------------------------------------------------------------------------------


def test_off_a_terminal_lines_are_plain_and_whole() -> None:
    out = io.StringIO()
    screen = Screen(out)  # a StringIO is no terminal
    long = "x" * 300
    screen.print(Text("styled", style="bold red"))
    screen.print(long)
    screen.rule("self-check", heavy=True)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["styled", long]
    assert lines[2].startswith("═══ self-check ═") and len(lines[2]) == 100
    assert "\x1b[" not in out.getvalue() and screen.lines == 3


def test_on_a_terminal_lines_are_styled_and_cut_to_its_width() -> None:
    out = io.StringIO()
    screen = Screen(out, fancy=True)
    assert screen.console is not None
    screen.print(Text("▸ FAILED", style="bold red"))
    screen.print("y" * 500)
    text = out.getvalue()
    assert "\x1b[" in text
    first, second = ANSI.sub("", text).splitlines()
    assert first == "▸ FAILED"
    assert len(second) == screen.console.width and second.endswith("…")


# -- the timeline ---------------------------------------------------------------------------------------


def test_messages_that_read_the_same_share_a_line_and_machines_stay_off_it() -> None:
    tid = FAILED.transition_id
    seen = [
        Seen(Dest.TEAM, tid, "❌ FAILED · Milvus import 4580…", "also in channel"),
        Seen(Dest.SLACK_WEBHOOK, tid, "❌ FAILED · Milvus import 4580…"),
        Seen(Dest.ONCALL, tid, "@oncall ❌ FAILED · Milvus import 4580…", "new thread, also in channel"),
        Seen(Dest.EMAIL, tid, "[jobwatch] FAILED - Milvus import 458021734452345602 (events)"),
        Seen(Dest.WEBHOOK, tid, note="verified"),
        Seen(Dest.BUS, tid, note="Vector DB Job State Change"),
    ]
    assert [line.plain for line in message_lines(seen)] == [
        "      ↳ #search (also in channel), Slack webhook  ❌ FAILED · Milvus import 4580…",
        "      ↳ #oncall (new thread, also in channel)  @oncall ❌ FAILED · Milvus import 4580…",
        "      ✉ e-mail  [jobwatch] FAILED - Milvus import 458021734452345602 (events)",
    ]


def test_people_destinations_not_reached_are_named() -> None:
    tid = FAILED.transition_id
    seen = [Seen(Dest.TEAM, tid), Seen(Dest.SLACK_WEBHOOK, tid)]
    line = missing_line(expected_destinations(FAILED), seen)
    assert line is not None and line.plain == "      ✗ not delivered to #oncall, e-mail"
    assert (
        missing_line(expected_destinations(FAILED), [*seen, Seen(Dest.ONCALL, tid), Seen(Dest.EMAIL, tid)])
        is None
    )


def test_the_transition_line_says_what_changed_and_marks_the_machine_deliveries() -> None:
    tid = STARTED.transition_id
    good = [Seen(Dest.WEBHOOK, tid, note="verified"), Seen(Dest.BUS, tid)]
    line = transition_line(STARTED, good, expected_destinations(STARTED)).plain
    assert line.split() == [
        "▸", "STARTED", "milvus-import", "458021734452345602", "—", "→", "RUNNING", "45%",
        "signed", "webhook", "✓", "EventBridge", "✓",
    ]  # fmt: skip
    refused = [Seen(Dest.WEBHOOK, tid, note="rejected: signature mismatch", ok=False)]
    line = transition_line(STARTED, refused, expected_destinations(STARTED)).plain
    assert line.endswith("signed webhook ✗ (1)  EventBridge ✗ (0)")
    stalled = transition("STALLED", 2, Phase.RUNNING, Phase.RUNNING)
    assert "RUNNING, phase kept" in transition_line(stalled, [], ()).plain


# -- the channels and the routes ------------------------------------------------------------------------


def test_a_channel_shows_each_root_as_it_stands_with_its_replies_below() -> None:
    team = thread(STARTED, FAILED)
    oncall = thread(FAILED, mentions=(ONCALL_GROUP,))
    assert [line.plain for line in channel_lines([team])] == [
        "● ❌ FAILED · Milvus import 458021734452345602 · n/a  (edited once)",
        "    ↳ ▶️ STARTED · Milvus import 458021734452345602: started (RUNNING)",
        "    ↳ ❌ FAILED · Milvus import 458021734452345602: failed (RUNNING → FAILED)"
        "  [also in the channel]",
    ]
    root, reply = (line.plain for line in channel_lines([oncall]))
    assert root.endswith("(never edited)")
    assert reply.startswith("    ↳ @oncall ❌ FAILED") and "<!subteam" not in reply
    assert [line.plain for line in channel_lines([])] == ["(empty)"]


def test_the_routes_table_reads_as_the_routes_say() -> None:
    routes = routes_document("http://127.0.0.1:9/hooks/jobwatch", "jobwatch-jobs")["routes"]
    assert [line.plain for line in route_lines([describe_route(r) for r in routes])] == [
        "  search-threads  label team=search        → #search (Slack app, threads)",
        "  on-call         events FAILED, LOST      → #oncall (Slack app, threads) mentioning @oncall",
        "  everything      every transition         → signed webhook, EventBridge jobwatch-jobs, "
        "Slack webhook (deployment default)",
        "  alert-email     events FAILED, CANCELED  → e-mail (alert topic)",
    ]
    assert as_seen(f"{ONCALL_GROUP} &lt;!channel&gt; <@U0ALICE>") == "@oncall <!channel> @U0ALICE"


@pytest.mark.parametrize("team", ["search", "catalog"])
@pytest.mark.parametrize("event", [e.value for e in Event if e is not Event.TEST])
def test_the_demos_expectations_agree_with_the_router(team: str, event: str) -> None:
    """The self-check's table is written independently of the router; here the two are compared."""
    kinds = {
        "slack-app.C0SEARCH01": Dest.TEAM,
        "slack-app.C0ONCALL01": Dest.ONCALL,
        "slack": Dest.SLACK_WEBHOOK,
        "email": Dest.EMAIL,
    }
    routes = [Route.model_validate(r) for r in routes_document("https://h.example.com/x", "b")["routes"]]
    spec = SPEC.model_copy(update={"labels": {"team": team}})
    t = transition(event, 2, Phase.RUNNING, Phase.RUNNING, spec)
    routed = set()
    for delivery in route(routes, t):
        kind = delivery.destination_id.split(".")[0]
        routed.add(
            kinds.get(delivery.destination_id) or {"webhook": Dest.WEBHOOK, "eventbridge": Dest.BUS}[kind]
        )
        if delivery.destination_id == "slack-app.C0ONCALL01":
            assert delivery.mentions == [ONCALL_GROUP]
    assert routed == expected_destinations(t)


# -- the self-check -------------------------------------------------------------------------------------


def outcome(seen: list[Seen], team: list[SlackThread] | None = None, **extra: Any) -> Outcome:
    return Outcome(
        published=[STARTED, FAILED],
        seen=seen,
        team=team or [],
        oncall=[],
        received=[],
        bus_events=[],
        emails=[],
        slack_posts=[],
        **extra,
    )


def everything(t: Transition) -> list[Seen]:
    return [Seen(dest, t.transition_id) for dest in expected_destinations(t)]


def test_the_routing_check_names_what_is_missing_doubled_or_stray() -> None:
    complete = everything(STARTED) + everything(FAILED)
    assert check_routing(outcome(complete)).ok
    broken = [s for s in complete if (s.dest, s.transition_id) != (Dest.EMAIL, FAILED.transition_id)]
    broken += [Seen(Dest.TEAM, STARTED.transition_id), Seen(Dest.WEBHOOK, "", note="rejected: no signature")]
    assert check_routing(outcome(broken)).problems == (
        "STARTED milvus-import 458021734452345602: #search got it twice, expected once",
        "FAILED milvus-import 458021734452345602: e-mail got it never, expected once",
        "signed webhook received something no transition explains: rejected: no signature",
    )


def test_the_team_channel_check_wants_one_thread_per_job_edited_to_its_last_state() -> None:
    good = outcome([], team=[thread(STARTED, FAILED)])
    assert check_team_channel(good).ok, check_team_channel(good).problems
    stale = thread(STARTED, FAILED)
    stale = SlackThread(thread(STARTED).root, stale.replies)  # the root was never edited to FAILED
    problems = check_team_channel(outcome([], team=[stale, thread(STARTED, FAILED)])).problems
    assert problems[0] == "#search: a second thread for milvus-import 458021734452345602"
    assert "root shows '▶️ RUNNING · Milvus import', not its last transition (FAILED)" in problems[1]
    assert problems[2].endswith("root edited never, expected once")
    assert not carries(f"`{STARTED.transition_id}2`", STARTED.transition_id)


def test_check_lines_show_each_problem_under_its_check() -> None:
    results = [CheckResult("EventBridge: 2 events", ()), CheckResult("e-mail: 0 e-mails", ("a", "b", "c"))]
    assert [line.plain for line in check_lines(results, shown_per_check=2)] == [
        "✓ EventBridge: 2 events",
        "✗ e-mail: 0 e-mails",
        "    PROBLEM: a",
        "    PROBLEM: b",
        "    … and 1 more",
    ]


def test_only_parts_of_a_line_are_styled() -> None:
    """A line's base style would color all of it: builders style their spans only."""
    tid = STARTED.transition_id
    built = [
        *message_lines([Seen(Dest.TEAM, tid, "▶️ STARTED · Milvus import", "new thread")]),
        *channel_lines([thread(STARTED)]),
        *check_lines([CheckResult("e-mail: 0 e-mails", ())]),
        *route_lines([("everything", "every transition", "EventBridge b")]),
        transition_line(STARTED, [], ()),
    ]
    for line in built:
        assert line.style == "", line.plain
        assert line.spans, line.plain
