"""The closing self-check: the demo fails (exit 1) on anything missing, doubled or unexpected.

Expectations come from the scenario (each job's scripted events, what its last messages must show)
and from `routes.expected_destinations`, written independently of jobwatch's router; what happened
is read at the destinations (`observe`). Pure functions over both, so they can be unit-tested.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobwatch.domain.model import Transition
from jobwatch.domain.severity import HEALTH_EVENTS
from jobwatch.render.email import email_body, email_subject
from jobwatch_devkit.slack_sink import ApiCall, ApiMessage, SinkMessage, SlackThread

from .observe import Seen, carries
from .routes import BROADCAST_EVENTS, ONCALL_EVENTS, ONCALL_GROUP, Dest, expected_destinations
from .scenario import TEAM, DemoJob
from .screen import CheckResult, plural, times

if TYPE_CHECKING:
    from jobwatch_devkit.harness import Email
    from jobwatch_devkit.webhook_receiver import Received

SCHEMA = "jobwatch.transition/v1"


@dataclass
class Outcome:
    """Everything the demo observed, as the checks read it."""

    published: list[Transition]
    seen: list[Seen]
    team: list[SlackThread]
    oncall: list[SlackThread]
    received: list[Received]
    bus_events: list[dict[str, Any]]
    emails: list[Email]
    slack_posts: list[SinkMessage]
    slack_rejected: list[SinkMessage] = field(default_factory=list)
    slack_failed_calls: list[ApiCall] = field(default_factory=list)
    dead_lettered: int = 0

    def by_job(self) -> dict[tuple[str, str], list[Transition]]:
        jobs: dict[tuple[str, str], list[Transition]] = defaultdict(list)
        for t in self.published:
            jobs[(t.source, t.job_id)].append(t)
        return jobs


def check_all(jobs: Sequence[DemoJob], outcome: Outcome) -> list[CheckResult]:
    return [
        check_transitions(jobs, outcome),
        check_routing(outcome),
        check_team_channel(outcome),
        check_oncall_channel(outcome),
        check_webhook(outcome),
        check_bus(outcome),
        check_emails(outcome),
        check_content(jobs, outcome),
    ]


def check_transitions(jobs: Sequence[DemoJob], outcome: Outcome) -> CheckResult:
    problems = []
    ids = Counter(t.transition_id for t in outcome.published)
    problems += [f"transition {tid} published {n} times" for tid, n in ids.items() if n > 1]
    by_job = outcome.by_job()
    for job in jobs:
        events = [t.event for t in by_job.pop((job.source, job.job_id), [])]
        if events != job.expected:
            problems.append(f"{job.name}: expected {job.expected}, the transitions topic carried {events}")
    problems += [
        f"transitions of a job the scenario does not have: {source} {job_id}" for source, job_id in by_job
    ]
    untouched = sorted({job.source for job in jobs} - {t.source for t in outcome.published})
    if untouched:
        problems.append(f"no transition at all for {untouched}")
    sources = len({job.source for job in jobs})
    title = f"{plural(len(outcome.published), 'transition')}, each published once, as scripted"
    detail = f"{len(jobs)} jobs of {sources} sources, each with exactly its expected events in order"
    return CheckResult(title, tuple(problems), detail)


def check_routing(outcome: Outcome) -> CheckResult:
    """Every transition at exactly the destinations its routes name, once each; nothing else anywhere."""
    problems = []
    got = Counter((s.transition_id, s.dest) for s in outcome.seen)
    known = {t.transition_id for t in outcome.published}
    per_dest: Counter[Dest] = Counter()
    for t in outcome.published:
        wanted = expected_destinations(t)
        for dest in Dest:
            want, have = (1 if dest in wanted else 0), got[(t.transition_id, dest)]
            per_dest[dest] += have
            if have != want:
                job = f"{t.event} {t.source} {t.job_id}"
                problems.append(f"{job}: {dest.value} got it {times(have)}, expected {times(want)}")
    strays = [s for s in outcome.seen if s.transition_id not in known]
    problems += [
        f"{s.dest.value} received something no transition explains: {s.first_line or s.note}" for s in strays
    ]
    counts = " · ".join(f"{dest.value} {per_dest[dest]}" for dest in Dest)
    return CheckResult(
        "every transition reached exactly its routed destinations, once each", tuple(problems), counts
    )


def _thread_problems(
    name: str, thread: SlackThread, transitions: list[Transition], mention: str | None
) -> list[str]:
    """A thread must hold these transitions as replies, in order, under a root showing the last one."""
    problems = []
    last = transitions[-1]
    job = f"{name} {last.source} {last.job_id}"
    replies = [
        next((t.event for t in transitions if carries(_raw(r), t.transition_id)), "?") for r in thread.replies
    ]
    if replies != [t.event for t in transitions]:
        problems.append(f"{job}: thread replies {replies}, expected {[t.event for t in transitions]}")
    header = _header(thread.root)
    if last.current.phase.value not in header or not carries(_raw(thread.root), last.transition_id):
        problems.append(f"{job}: root shows {header!r}, not its last transition ({last.current.phase.value})")
    if thread.root.edits != len(transitions) - 1:
        problems.append(
            f"{job}: root edited {times(thread.root.edits)}, expected {times(len(transitions) - 1)}"
        )
    for reply, t in zip(thread.replies, transitions, strict=False):
        if reply.reply_broadcast != (t.event in BROADCAST_EVENTS):
            problems.append(f"{job}: {t.event} reply broadcast={reply.reply_broadcast}")
        mentions = [mention] if mention else []
        if reply.mentions != mentions:
            problems.append(f"{job}: {t.event} reply mentions {reply.mentions}, expected {mentions}")
    return problems


def _threads_by_job(
    name: str, threads: list[SlackThread], wanted: dict[tuple[str, str], list[Transition]]
) -> tuple[dict[tuple[str, str], SlackThread], list[str]]:
    """Each thread's job (by the transitions its replies carry); problems for strays and doubles."""
    found: dict[tuple[str, str], SlackThread] = {}
    problems = []
    for thread in threads:
        text = _raw(thread.root) + "".join(_raw(r) for r in thread.replies)
        job = next(
            (key for key, ts in wanted.items() if any(carries(text, t.transition_id) for t in ts)), None
        )
        if job is None:
            problems.append(f"{name}: a thread no expected job explains: {_header(thread.root)!r}")
        elif job in found:
            problems.append(f"{name}: a second thread for {job[0]} {job[1]}")
        else:
            found[job] = thread
    problems += [
        f"{name}: no thread for {source} {job_id}"
        for source, job_id in wanted
        if (source, job_id) not in found
    ]
    return found, problems


def check_team_channel(outcome: Outcome) -> CheckResult:
    wanted = {key: ts for key, ts in outcome.by_job().items() if ts[0].job.labels.get("team") == TEAM}
    found, problems = _threads_by_job(Dest.TEAM.value, outcome.team, wanted)
    for key, thread in found.items():
        problems += _thread_problems(Dest.TEAM.value, thread, wanted[key], None)
    replies = sum(len(thread.replies) for thread in outcome.team)
    edits = sum(thread.root.edits for thread in outcome.team)
    threads = plural(len(outcome.team), "thread")
    title = f"{Dest.TEAM.value}: {threads}, one per team={TEAM} job, each root showing its final phase"
    detail = (
        f"{plural(edits, 'root edit')}; {plural(replies, 'reply', 'replies')} in job order; "
        "FAILED, LOST and STALLED replies also in the channel; no mentions"
    )
    return CheckResult(title, tuple(problems), detail)


def check_oncall_channel(outcome: Outcome) -> CheckResult:
    wanted = {
        key: [t for t in ts if t.event in ONCALL_EVENTS]
        for key, ts in outcome.by_job().items()
        if any(t.event in ONCALL_EVENTS for t in ts)
    }
    found, problems = _threads_by_job(Dest.ONCALL.value, outcome.oncall, wanted)
    for key, thread in found.items():
        problems += _thread_problems(Dest.ONCALL.value, thread, wanted[key], ONCALL_GROUP)
    events = Counter(t.event for ts in wanted.values() for t in ts)
    what = ", ".join(f"{event} {n}" for event, n in sorted(events.items()))
    threads = plural(len(outcome.oncall), "thread")
    title = f"{Dest.ONCALL.value}: {threads} ({what}), each reply mentioning the on-call group"
    return CheckResult(title, tuple(problems))


def check_webhook(outcome: Outcome) -> CheckResult:
    problems = [f"request refused by the receiver: {r.reason}" for r in outcome.received if not r.verified]
    problems += [
        f"verified request answered {r.status}" for r in outcome.received if r.verified and not r.delivered
    ]
    for request in outcome.received:
        if not request.verified:
            continue
        event = request.event
        if event.get("transitionId") != request.transition_id or event.get("schema") != SCHEMA:
            problems.append(f"body does not match its headers: {request.transition_id}")
    verified = sum(1 for r in outcome.received if r.delivered)
    title = (
        f"{Dest.WEBHOOK.value}: {plural(len(outcome.received), 'request')}, {verified} verified by the "
        "receiver's own HMAC check"
    )
    return CheckResult(title, tuple(problems))


def check_bus(outcome: Outcome) -> CheckResult:
    problems = []
    delivered = Counter(str((e.get("detail") or {}).get("transitionId")) for e in outcome.bus_events)
    expected = Counter(t.transition_id for t in outcome.published)
    if delivered != expected:
        missing = sorted((expected - delivered).elements())
        extra = sorted((delivered - expected).elements())
        problems.append(f"EventBridge events differ from the transitions: missing {missing}, extra {extra}")
    for event in outcome.bus_events:
        detail = event.get("detail") or {}
        kind = (
            "Vector DB Job Health Change"
            if detail.get("event") in HEALTH_EVENTS
            else "Vector DB Job State Change"
        )
        if event.get("source") != "jobwatch" or event.get("detail-type") != kind:
            problems.append(
                f"{detail.get('transitionId')}: source {event.get('source')}, {event.get('detail-type')}"
            )
    events = plural(len(outcome.bus_events), "event")
    title = f"{Dest.BUS.value}: {events} from the rule's queue, one per transition, typed by kind"
    return CheckResult(title, tuple(problems))


def check_emails(outcome: Outcome) -> CheckResult:
    problems = []
    for email in outcome.emails:
        if email.event and email.event not in email.subject:
            problems.append(f"e-mail for {email.event} has subject {email.subject!r}")
    events = Counter(e.event for e in outcome.emails)
    what = ", ".join(f"{event} {n}" for event, n in sorted(events.items())) or "none"
    return CheckResult(
        f"{Dest.EMAIL.value}: {plural(len(outcome.emails), 'e-mail')} ({what}), each once", tuple(problems)
    )


def check_content(jobs: Sequence[DemoJob], outcome: Outcome) -> CheckResult:
    problems = _must_show_problems(jobs, outcome) + _slack_problems(outcome)
    if outcome.dead_lettered:
        problems.append(f"{plural(outcome.dead_lettered, 'delivery', 'deliveries')} dead-lettered")
    shown = sum(1 for job in jobs if job.must_show)
    title = "messages show what they must; nothing refused, dead-lettered or mentioned by upstream text"
    detail = f"the last messages of {shown} jobs: size, rows of total, failure reason, files..."
    return CheckResult(title, tuple(problems), detail)


def _must_show_problems(jobs: Sequence[DemoJob], outcome: Outcome) -> list[str]:
    """A job's last transition, as the thread reply, the webhook message and the e-mail show it."""
    problems = []
    by_job = outcome.by_job()
    team_replies = [r for thread in outcome.team for r in thread.replies]
    for job in jobs:
        transitions = by_job.get((job.source, job.job_id))
        if not job.must_show or not transitions:
            continue
        last = transitions[-1]
        reply = next((r for r in team_replies if carries(_raw(r), last.transition_id)), None)
        post = next((m for m in outcome.slack_posts if carries(m.raw, last.transition_id)), None)
        texts = {
            "thread reply": _visible(reply),
            "Slack webhook message": _visible(post),
            "e-mail": f"{email_subject(last)}\n{email_body(last)}",
        }
        for where, text in texts.items():
            missing = [want for want in job.must_show if want not in text]
            if missing:
                problems.append(f"{job.name}: the {last.event} {where} does not show {missing}")
    return problems


def _slack_problems(outcome: Outcome) -> list[str]:
    """Upstream text never mentions anyone, and Slack refused nothing."""
    problems = []
    raw_slack = [m.raw for m in outcome.slack_posts] + [
        _raw(m) for thread in outcome.team + outcome.oncall for m in (thread.root, *thread.replies)
    ]
    if any("<!channel>" in raw for raw in raw_slack):
        problems.append("an upstream '<!channel>' reached Slack unescaped")
    problems += [f"Slack refused a webhook post: {m.response}" for m in outcome.slack_rejected]
    problems += [f"Slack Web API {c.method} failed: {c.error}" for c in outcome.slack_failed_calls]
    return problems


def _raw(message: ApiMessage) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def _header(root: ApiMessage) -> str:
    for block in root.blocks:
        if isinstance(block, dict) and block.get("type") == "header":
            return str((block.get("text") or {}).get("text", ""))
    return root.text


def _visible(message: ApiMessage | SinkMessage | None) -> str:
    if message is None:
        return ""
    if isinstance(message, SinkMessage):
        message = ApiMessage(channel="", ts="", text=message.text or "", blocks=message.blocks)
    return message.visible_text
