"""What is checked at the end of a round, against ground truth computed from the scripts alone.

`RoundResult` holds the counts (see "Invariants" in the package docstring). The checks read what each
channel received, in this order: SNS (`count_sns`: redeliveries, the first copy of each transition),
Slack (`check_slack`: duplicates, ambiguous reposts, refused posts, dead letters), each job
(`check_jobs`: lost, order on SNS and in Slack, stored state, stuck scripts), what matched no expected
event (`check_false_alerts`), and e-mail (`check_emails`). They only read and count; the round driver
gathers what they read.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobwatch.domain.model import TrackedJob, Transition

from ..slack_sink import SlackSink
from .injectors import EmailTopic
from .schedules import Schedule

__all__ = [
    "EMAILED_EVENTS",
    "TID_IN_SLACK",
    "RoundResult",
    "SlackView",
    "SnsView",
    "check_emails",
    "check_false_alerts",
    "check_jobs",
    "check_slack",
    "count_sns",
    "routed_to_email",
]

from jobwatch.domain.transitions import parse_transition_id

TID_IN_SLACK = re.compile(r"Transition `([^`]+)`")
EMAILED_EVENTS = frozenset({"FAILED", "CANCELED"})
"""The template's AlertEmailEvents default: what the e-mail queue's subscription lets through."""


def _tid_order(tid: str) -> tuple[str, int, int]:
    """The order a job's transitions were recorded in (older lives first, then versions)."""
    ref = parse_transition_id(tid)
    assert ref is not None, tid
    return ref.order


@dataclass
class RoundResult:
    schedules: int = 0
    transitions: int = 0
    delivered: int = 0
    lost: int = 0
    lost_sns: int = 0
    duplicated: int = 0
    false_alerts: int = 0
    out_of_order_sns: int = 0
    out_of_order_slack: int = 0
    state_mismatches: int = 0
    outbox_left: int = 0
    slack_queue_left: int = 0
    slack_dead_lettered: int = 0
    outbox_dead_lettered: int = 0
    stuck_jobs: int = 0
    spurious_poll_errors: int = 0
    """Polls of a good answer that failed anyway (the machine was too slow for the read timeout)."""
    sns_redeliveries: int = 0
    ambiguous_reposts: int = 0
    slack_refused: int = 0
    slack_deferred: int = 0
    slack_collapsed: int = 0
    order_waits_expired: int = 0
    emails_expected: int = 0
    emailed: int = 0
    email_lost: int = 0
    email_duplicated: int = 0
    email_false: int = 0
    email_ambiguous: int = 0
    """E-mails published twice because the topic took a publish whose answer the sender never saw."""
    email_dead_lettered: int = 0
    cycles: int = 0
    crashes: int = 0
    aborted_cycles: int = 0
    overlaps: int = 0
    conflicts: int = 0
    events: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.lost_sns
            or self.duplicated
            or self.false_alerts
            or self.out_of_order_sns
            or self.out_of_order_slack
            or self.state_mismatches
            or self.outbox_left
            or self.slack_queue_left
            or self.stuck_jobs
            or self.slack_refused
            or self.email_lost
            or self.email_duplicated
            or self.email_false
        )

    def add(self, other: RoundResult) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, getattr(self, name) + value)
        self.events.update(other.events)
        self.faults_injected.update(other.faults_injected)
        self.problems.extend(other.problems)

    def summary(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schedules": self.schedules,
            "transitions": self.transitions,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "false_alerts": self.false_alerts,
        }
        out.update(extra)
        out.update(
            {
                "crashes": self.crashes,
                "overlaps": self.overlaps,
                "sns_redeliveries": self.sns_redeliveries,
                "ambiguous_reposts": self.ambiguous_reposts,
                "lost_sns": self.lost_sns,
                "out_of_order_sns": self.out_of_order_sns,
                "out_of_order_slack": self.out_of_order_slack,
                "state_mismatches": self.state_mismatches,
                "outbox_left": self.outbox_left,
                "slack_queue_left": self.slack_queue_left,
                "slack_dead_lettered": self.slack_dead_lettered,
                "outbox_dead_lettered": self.outbox_dead_lettered,
                "stuck_jobs": self.stuck_jobs,
                "spurious_poll_errors": self.spurious_poll_errors,
                "slack_refused": self.slack_refused,
                "slack_deferred": self.slack_deferred,
                "slack_collapsed": self.slack_collapsed,
                "order_waits_expired": self.order_waits_expired,
                "emails_expected": self.emails_expected,
                "emailed": self.emailed,
                "email_lost": self.email_lost,
                "email_duplicated": self.email_duplicated,
                "email_false": self.email_false,
                "email_ambiguous": self.email_ambiguous,
                "email_dead_lettered": self.email_dead_lettered,
                "cycles": self.cycles,
                "aborted_cycles": self.aborted_cycles,
                "conflicts": self.conflicts,
                "events": dict(sorted(self.events.items())),
                "faults_injected": dict(sorted(self.faults_injected.items())),
                "ok": self.ok,
            }
        )
        return out


@dataclass
class SnsView:
    """What SNS delivered to an ordinary subscriber: the first copy of each transition, and per job
    the transition ids in the order their first copies arrived."""

    first_seen: dict[str, Transition]
    order: dict[str, list[str]]


@dataclass
class SlackView:
    """What Slack showed: every transition posted at least once (whatever the answer), and per job the
    transition ids in the order of their first posts."""

    posted: set[str] = field(default_factory=set)
    order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def count_sns(sns_seen: Sequence[Transition], result: RoundResult) -> SnsView:
    """SNS duplicates are allowed (at-least-once): counted as `sns_redeliveries`, then set aside."""
    sns_count: Counter[str] = Counter(t.transition_id for t in sns_seen)
    result.sns_redeliveries = sum(n - 1 for n in sns_count.values())
    first_seen: dict[str, Transition] = {}
    sns_order: dict[str, list[str]] = defaultdict(list)
    for t in sns_seen:
        if t.transition_id not in first_seen:
            first_seen[t.transition_id] = t
            sns_order[t.job_key].append(t.transition_id)
    return SnsView(first_seen, sns_order)


def _read_posts(sink: SlackSink, result: RoundResult) -> tuple[SlackView, Counter[str], Counter[str]]:
    """Every post the sink received, by transition id: (view, posts answered 2xx, posts answered not)."""
    ok_posts: Counter[str] = Counter()
    ambiguous: Counter[str] = Counter()
    slack = SlackView()
    for message in sink.messages():
        found = TID_IN_SLACK.search(json.dumps(message.payload))
        if found is None:
            result.problems.append(f"Slack message without a transition id: {message.text!r}")
            result.false_alerts += 1
            continue
        tid = found.group(1)
        if 200 <= message.status < 300:
            ok_posts[tid] += 1
        else:
            ambiguous[tid] += 1
        if tid not in slack.posted:
            slack.posted.add(tid)
            slack.order[tid.rpartition("#")[0]].append(tid)
    return slack, ok_posts, ambiguous


def check_slack(sink: SlackSink, dead_lettered: Sequence[tuple[str, str]], result: RoundResult) -> SlackView:
    """Duplicates (clean posts beyond the first), ambiguous reposts, refused posts, dead letters."""
    slack, ok_posts, ambiguous = _read_posts(sink, result)
    result.ambiguous_reposts = sum(ambiguous.values())
    for tid, why in dead_lettered:
        result.problems.append(f"Slack DLQ: {tid} ({why}), shown in Slack: {tid in slack.posted}")
    result.duplicated = sum(n - 1 for n in ok_posts.values() if n > 1)
    result.slack_refused = sum(1 for m in sink.rejected() if m.status == 400)
    for tid, n in ok_posts.items():
        if n > 1:
            result.problems.append(f"{tid} posted {n} times with a 2xx answer")
    return slack


def check_jobs(
    schedules: Sequence[Schedule],
    sns: SnsView,
    slack: SlackView,
    stored: Mapping[str, TrackedJob],
    result: RoundResult,
) -> set[str]:
    """Each job's story against its script; returns the transition ids that matched an expected event."""
    matched_tids: set[str] = set()
    for schedule in schedules:
        _check_job(schedule, sns, slack, stored.get(schedule.key), result, matched_tids)
    return matched_tids


def _check_job(
    schedule: Schedule,
    sns: SnsView,
    slack: SlackView,
    job: TrackedJob | None,
    result: RoundResult,
    matched_tids: set[str],
) -> None:
    key = schedule.key
    expected = schedule.expected
    result.transitions += len(expected)
    result.events.update(expected)
    recorded = _check_order(key, sns, slack, result)
    got = [sns.first_seen[tid].event for tid in recorded]
    missing_at_slack = _match_events(expected, got, recorded, slack.posted, result, matched_tids)
    _check_stored(schedule, job, result)
    if expected != got or missing_at_slack:
        result.problems.append(
            f"{key} ({schedule.spec.source} {schedule.spec.job_id}): expected {expected}, "
            f"SNS {got}, not in Slack {[t for t in recorded if t not in slack.posted]}; "
            f"script: {schedule.describe()}"
        )
    if not schedule.settled and schedule.cursor < len(schedule.steps):
        result.stuck_jobs += 1


def _check_order(key: str, sns: SnsView, slack: SlackView, result: RoundResult) -> list[str]:
    """A job's transitions on SNS and in Slack in the order they were recorded; returns them so sorted."""
    recorded = sorted(sns.order.get(key, []), key=_tid_order)
    if recorded != sns.order.get(key, []):
        result.out_of_order_sns += 1
        result.problems.append(f"{key}: out of order on SNS: {sns.order.get(key)}")
    in_slack = slack.order.get(key, [])
    if sorted(in_slack, key=_tid_order) != in_slack:
        result.out_of_order_slack += 1
        result.problems.append(f"{key}: out of order in Slack: {in_slack}")
    return recorded


def _match_events(
    expected: list[str],
    got: list[str],
    recorded: list[str],
    posted: set[str],
    result: RoundResult,
    matched_tids: set[str],
) -> int:
    """Expected events matched to what SNS carried (lost, delivered); returns those missing in Slack."""
    matcher = difflib.SequenceMatcher(a=expected, b=got, autojunk=False)
    matched = 0
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            matched_tids.add(recorded[block.b + offset])
            matched += 1
            if recorded[block.b + offset] in posted:
                result.delivered += 1
    missing_at_slack = sum(1 for tid in recorded if tid in matched_tids and tid not in posted)
    result.lost_sns += len(expected) - matched
    result.lost += len(expected) - matched + missing_at_slack
    return missing_at_slack


def _check_stored(schedule: Schedule, job: TrackedJob | None, result: RoundResult) -> None:
    """The stored phase/status is the last upstream state the script served."""
    stored = None if job is None or job.snapshot is None else (job.snapshot.phase, job.snapshot.status)
    if stored != (schedule.final_phase, schedule.final_status):
        result.state_mismatches += 1
        result.problems.append(
            f"{schedule.key}: stored {stored}, expected {(schedule.final_phase, schedule.final_status)}"
        )


def check_false_alerts(sns: SnsView, slack: SlackView, matched_tids: set[str], result: RoundResult) -> None:
    """Distinct transitions seen on SNS or in Slack that match no expected event."""
    unexpected = (set(sns.first_seen) | slack.posted) - matched_tids
    result.false_alerts += len(unexpected)
    for tid in sorted(unexpected)[:20]:
        event = sns.first_seen[tid].event if tid in sns.first_seen else "?"
        result.problems.append(f"false alert {tid} ({event})")


def routed_to_email(sns: SnsView, matched_tids: set[str]) -> set[str]:
    """The expected transitions the e-mail queue's subscription lets through."""
    return {tid for tid in matched_tids if sns.first_seen[tid].event in EMAILED_EVENTS}


def check_emails(
    routed: set[str], sent: Counter[str], topic: EmailTopic, dead_lettered: int, result: RoundResult
) -> None:
    """Each routed transition e-mailed once; repeats only where a publish's answer was lost."""
    ambiguous = topic.ambiguous
    result.faults_injected.update(topic.injected)
    result.emails_expected = len(routed)
    result.emailed = len(routed & set(sent))
    result.email_lost = len(routed - set(sent))
    result.email_false = len(set(sent) - routed)
    result.email_ambiguous = sum(ambiguous.values())
    result.email_duplicated = sum(max(0, n - 1 - ambiguous[tid]) for tid, n in sent.items())
    result.email_dead_lettered = dead_lettered
    for tid in sorted(routed - set(sent))[:20]:
        result.problems.append(f"e-mail missing for {tid}")
    for tid in sorted(set(sent) - routed)[:20]:
        result.problems.append(f"e-mail for {tid}, which was not routed to e-mail")
    for tid, n in sorted(sent.items()):
        if n - 1 > ambiguous[tid]:
            result.problems.append(f"{tid} e-mailed {n} times ({ambiguous[tid]} after a lost answer)")
