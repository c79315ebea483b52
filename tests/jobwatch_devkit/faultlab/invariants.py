"""What is checked at the end of a round, against ground truth computed from the scripts alone.

`RoundResult` holds the counts (see "Invariants" in the package docstring). The checks read what each
channel received, in this order: SNS (`count_sns`: redeliveries, the first copy of each transition),
Slack (`check_slack`: duplicates, ambiguous reposts, refused posts, dead letters), each job story
(`check_jobs`: lost, order on SNS and in Slack, stored state, stuck scripts), what matched no expected
event (`check_false_alerts`), and e-mail (`check_emails`). They only read and count; the round driver
gathers what they read.

A story is one life of a job (`story_of`): a job untracked and tracked again is two stories with one
key, told apart by the life its transition ids carry (D28), each checked on its own.
`LeakScanner` counts kept texts that hold one of the jobs' API keys (`secrets_leaked`); the round
driver and the lab hand it every log line, item, event, post and e-mail they see.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobwatch.domain.model import TrackedJob, Transition
from jobwatch.domain.transitions import parse_transition_id

from ..slack_sink import SlackSink
from .injectors import EmailTopic
from .routed import Seen, Tally
from .schedules import SECRET_MARK, Schedule

__all__ = [
    "EMAILED_EVENTS",
    "TID_IN_SLACK",
    "LeakScanner",
    "LogScan",
    "RoundResult",
    "SlackView",
    "SnsView",
    "check_emails",
    "check_false_alerts",
    "check_jobs",
    "check_slack",
    "check_stored",
    "count_sns",
    "routed_to_email",
    "story_of",
]

TID_IN_SLACK = re.compile(r"Transition `([^`]+)`")
EMAILED_EVENTS = frozenset({"FAILED", "CANCELED"})
"""The template's AlertEmailEvents default: what the e-mail queue's subscription lets through."""


def story_of(tid: str) -> str:
    """`<job key>#<life>`: which life of which job a transition belongs to (`<key>#` for ids from
    before lives; `?` for ids that are not numbered transitions)."""
    ref = parse_transition_id(tid)
    if ref is None:
        return f"{tid.rpartition('#')[0]}#?"
    return f"{ref.job_key}#{ref.life}"


def _tid_order(tid: str) -> tuple[str, int, int]:
    """The order a job's transitions were recorded in (older lives first, then versions)."""
    ref = parse_transition_id(tid)
    assert ref is not None, tid
    return ref.order


@dataclass
class RoundResult:
    schedules: int = 0
    transitions: int = 0
    deliveries_expected: int = 0
    """Expected (transition, destination) pairs: where the routes send the expected events."""
    delivered: int = 0
    """Of those, shown at their destination."""
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
    secrets_leaked: int = 0
    """Kept texts (log lines, stored items, events, Slack posts, e-mails, cycle reports) holding a key."""
    texts_scanned: int = 0
    poll_error_mismatches: int = 0
    """Polls of a hostile step not recorded as a poll error of its kind (TOO_LARGE, TOO_SLOW, ...)."""
    hostile_polls: int = 0
    """Polls of a hostile step checked for their poll error kind."""
    retracked: int = 0
    """Jobs untracked after their story ended and tracked again with a new one (a second life)."""
    second_life_transitions: int = 0
    second_life_delivered: int = 0
    """Of those, shown in Slack."""
    second_life_emails_expected: int = 0
    second_life_emailed: int = 0
    lives_interleaved_in_slack: int = 0
    """Jobs whose lives' posts interleave in Slack (diagnostic: order is kept within a life)."""
    cycles: int = 0
    shards_used: int = 0
    """Shards holding at least one registered job (summed over rounds): the layout really spreads them."""
    fanout_cycles: int = 0
    """Cycles run as coordinator(s) and poll workers (`fanout`)."""
    worker_crashes: int = 0
    """Poll workers that died at a fault point of their shard (their orders were delivered again)."""
    worker_timeouts: int = 0
    """Poll workers whose time ran out partway (jobs left to the next tick), or killed mid-poll."""
    overlapping_coordinators: int = 0
    """Ticks with two coordinators (a duplicated schedule): every shard ordered twice."""
    redelivered_orders: int = 0
    late_orders: int = 0
    """Orders of an earlier tick delivered after a newer tick's orders ran (all must be refused)."""
    orders_skipped: int = 0
    """Order deliveries that polled nothing: their shard's lease was taken, or their tick was over."""
    polled_twice_in_cycle: int = 0
    """(job story, tick) pairs polled more than once by the scheduled runs of that tick."""
    lease_violations: int = 0
    """A shard polled by two runs of one tick, or a redelivered or late order that polled."""
    ticked_polls: int = 0
    """Polls made by scheduled runs (with a tick), each checked against "polled twice in a cycle"."""
    unattributed_polls: int = 0
    """Polls whose request carried no tracked story's key (none expected)."""
    crashes: int = 0
    aborted_cycles: int = 0
    overlaps: int = 0
    conflicts: int = 0
    dead_letters_unnamed: int = 0
    """Dead letters naming no destination (an original message the redrive policy moved)."""
    events: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    destinations: dict[str, Tally] = field(default_factory=dict)
    """Per destination (by summary name): see `routed`."""
    problems: list[str] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    """Lines worth reading that break no invariant (the loaded machine's own poll errors)."""
    spurious_counted_exactly: int = 0
    """Of `spurious_poll_errors`, those one run recorded cleanly: ground truth counted them exactly
    (the rest happened in overlapping, crashed or store-faulted cycles: see `health_adopted`)."""
    health_adopted: int = 0
    """Stories whose health events were taken from what jobwatch did (`Schedule.health_uncertain`):
    every other event of theirs still matched the script."""

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
            or self.secrets_leaked
            or self.poll_error_mismatches
            or self.polled_twice_in_cycle
            or self.lease_violations
            or self.unattributed_polls
            or any(not t.ok for t in self.destinations.values())
        )

    def add(self, other: RoundResult) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, getattr(self, name) + value)
        self.events.update(other.events)
        self.faults_injected.update(other.faults_injected)
        for name, tally in other.destinations.items():
            self.destinations.setdefault(name, Tally()).add(tally)
        self.problems.extend(other.problems)
        self.diagnostics.extend(other.diagnostics)

    def summary(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schedules": self.schedules,
            "transitions": self.transitions,
            "deliveries_expected": self.deliveries_expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "false_alerts": self.false_alerts,
        }
        out.update(extra)
        out.update(
            {
                "polled_twice_in_cycle": self.polled_twice_in_cycle,
                "crashes": self.crashes,
                "overlaps": self.overlaps,
                "shards_used": self.shards_used,
                "fanout_cycles": self.fanout_cycles,
                "worker_crashes": self.worker_crashes,
                "worker_timeouts": self.worker_timeouts,
                "overlapping_coordinators": self.overlapping_coordinators,
                "redelivered_orders": self.redelivered_orders,
                "late_orders": self.late_orders,
                "orders_skipped": self.orders_skipped,
                "lease_violations": self.lease_violations,
                "ticked_polls": self.ticked_polls,
                "unattributed_polls": self.unattributed_polls,
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
                "spurious_counted_exactly": self.spurious_counted_exactly,
                "health_adopted": self.health_adopted,
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
                "secrets_leaked": self.secrets_leaked,
                "texts_scanned": self.texts_scanned,
                "poll_error_mismatches": self.poll_error_mismatches,
                "hostile_polls": self.hostile_polls,
                "retracked": self.retracked,
                "second_life_transitions": self.second_life_transitions,
                "second_life_delivered": self.second_life_delivered,
                "second_life_emails_expected": self.second_life_emails_expected,
                "second_life_emailed": self.second_life_emailed,
                "lives_interleaved_in_slack": self.lives_interleaved_in_slack,
                "cycles": self.cycles,
                "aborted_cycles": self.aborted_cycles,
                "conflicts": self.conflicts,
                "dead_letters_unnamed": self.dead_letters_unnamed,
                "destinations": {name: t.summary() for name, t in sorted(self.destinations.items())},
                "events": dict(sorted(self.events.items())),
                "faults_injected": dict(sorted(self.faults_injected.items())),
                "ok": self.ok,
            }
        )
        return out


class LeakScanner:
    """Counts the texts it is shown that hold an API key of the lab (they all contain `SECRET_MARK`,
    so a key cut in half is found too) and keeps a few lines saying where. Thread-safe."""

    def __init__(self, mark: str = SECRET_MARK) -> None:
        self.mark = mark
        self.leaks = 0
        self.scanned = 0
        self.examples: list[str] = []
        self.where: Counter[str] = Counter()
        """Leaks per kind of text (`a log line`, `a DynamoDB item`, `a Slack post`, ...)."""
        self._lock = threading.Lock()

    def scan(self, where: str, text: str) -> None:
        found = text.find(self.mark)
        with self._lock:
            self.scanned += 1
            if found < 0:
                return
            self.leaks += 1
            self.where[where] += 1
            if len(self.examples) < 20:
                context = text[max(0, found - 120) : found].replace("\n", " ")
                self.examples.append(f"API key leaked in {where}: ...{context}<key>")

    def scan_json(self, where: str, value: Any) -> None:
        self.scan(where, json.dumps(value, default=str))


class LogScan:
    """A log handler's stream that hands each line to a `LeakScanner` instead of printing it."""

    def __init__(self, scanner: LeakScanner) -> None:
        self.scanner = scanner
        self.lines = 0

    def write(self, text: str) -> int:
        if text.strip():
            self.lines += 1
            self.scanner.scan("a log line", text)
        return len(text)

    def flush(self) -> None:
        return None


@dataclass
class SnsView:
    """What SNS delivered to an ordinary subscriber: the first copy of each transition, and per job
    story (`story_of`) the transition ids in the order their first copies arrived."""

    first_seen: dict[str, Transition]
    order: dict[str, list[str]]


@dataclass
class SlackView:
    """What Slack showed: every transition posted at least once (whatever the answer), and per job
    story the transition ids in the order of their first posts (`by_job`: per job key, every life)."""

    posted: set[str] = field(default_factory=set)
    order: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    by_job: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def count_sns(sns_seen: Sequence[Transition], result: RoundResult) -> SnsView:
    """SNS duplicates are allowed (at-least-once): counted as `sns_redeliveries`, then set aside."""
    sns_count: Counter[str] = Counter(t.transition_id for t in sns_seen)
    result.sns_redeliveries = sum(n - 1 for n in sns_count.values())
    first_seen: dict[str, Transition] = {}
    sns_order: dict[str, list[str]] = defaultdict(list)
    for t in sns_seen:
        if t.transition_id not in first_seen:
            first_seen[t.transition_id] = t
            sns_order[story_of(t.transition_id)].append(t.transition_id)
    return SnsView(first_seen, sns_order)


def _read_posts(sink: SlackSink, result: RoundResult) -> tuple[SlackView, list[Seen]]:
    """Every post the sink received, by transition id: the view, and each post (clean: answered 2xx)."""
    seen: list[Seen] = []
    slack = SlackView()
    for message in sink.messages():
        found = TID_IN_SLACK.search(json.dumps(message.payload))
        if found is None:
            result.problems.append(f"Slack message without a transition id: {message.text!r}")
            result.false_alerts += 1
            continue
        tid = found.group(1)
        seen.append(Seen(tid, clean=200 <= message.status < 300))
        if tid not in slack.posted:
            slack.posted.add(tid)
            slack.order[story_of(tid)].append(tid)
            slack.by_job[tid.rpartition("#")[0]].append(tid)
    return slack, seen


def check_slack(sink: SlackSink, result: RoundResult) -> list[Seen]:
    """The Slack webhook's posts (`Seen`, clean when answered 2xx), ambiguous reposts, refused posts."""
    slack, seen = _read_posts(sink, result)
    result.ambiguous_reposts = sum(1 for s in seen if not s.clean)
    result.slack_refused = sum(1 for m in sink.rejected() if m.status == 400)
    result.lives_interleaved_in_slack = sum(1 for tids in slack.by_job.values() if _interleaved(tids))
    return seen


def _interleaved(tids: list[str]) -> bool:
    """Posts of one job whose lives alternate (life 1, life 2, life 1 again)."""
    lives = [story_of(tid) for tid in tids]
    changes = sum(1 for a, b in itertools.pairwise(lives) if a != b)
    return changes > len(set(lives)) - 1


def check_jobs(
    schedules: Sequence[Schedule],
    sns: SnsView,
    stored: Mapping[str, TrackedJob],
    result: RoundResult,
) -> set[str]:
    """Each job's story against its script (on SNS); returns the transition ids that matched an
    expected event. What each destination received is checked per destination (`routed`)."""
    matched_tids: set[str] = set()
    for schedule in schedules:
        _check_job(schedule, sns, stored.get(schedule.key), result, matched_tids)
    return matched_tids


def _check_job(
    schedule: Schedule,
    sns: SnsView,
    job: TrackedJob | None,
    result: RoundResult,
    matched_tids: set[str],
) -> None:
    key = schedule.key
    recorded = _check_order(schedule.story, sns, result)
    got = [sns.first_seen[tid].event for tid in recorded]
    filtered = schedule.spec.notify is not None and schedule.spec.notify.events is not None
    if schedule.health_uncertain and _adoptable_health(schedule.expected, got, filtered):
        schedule.expected = got
        result.health_adopted += 1
    expected = schedule.expected
    result.transitions += len(expected)
    result.events.update(expected)
    _match_events(expected, got, recorded, result, matched_tids)
    if not schedule.retired:  # a retired life's stored state was checked when it was untracked
        check_stored(schedule, job, result)
    if schedule.generation > 1:
        result.second_life_transitions += len(expected)
    if expected != got:
        result.problems.append(
            f"{key} life {schedule.generation} ({schedule.spec.source} {schedule.spec.job_id}): "
            f"expected {expected}, SNS {got}; script: {schedule.describe()}"
        )
    if not schedule.settled and schedule.cursor < len(schedule.steps):
        result.stuck_jobs += 1


_ALERTS = frozenset({"UNREACHABLE", "AUTH_FAILED"})


def _adoptable_health(expected: list[str], got: list[str], filtered: bool) -> bool:
    """`got` is the script's story with health events only where a correct jobwatch may have put
    them: the same other events in the same order and, unless a notify filter drops some, alerts
    and RECOVERED alternating (one alert per outage, RECOVERED only after one)."""
    health = {*_ALERTS, "RECOVERED"}
    if [e for e in expected if e not in health] != [e for e in got if e not in health]:
        return False
    if filtered:
        return True
    alert_open = False
    for event in got:
        if event in _ALERTS:
            if alert_open:
                return False
            alert_open = True
        elif event == "RECOVERED":
            if not alert_open:
                return False
            alert_open = False
    return True


def _check_order(story: str, sns: SnsView, result: RoundResult) -> list[str]:
    """A story's transitions on SNS in the order they were recorded; returns them so sorted."""
    recorded = sorted(sns.order.get(story, []), key=_tid_order)
    if recorded != sns.order.get(story, []):
        result.out_of_order_sns += 1
        result.problems.append(f"{story}: out of order on SNS: {sns.order.get(story)}")
    return recorded


def _match_events(
    expected: list[str],
    got: list[str],
    recorded: list[str],
    result: RoundResult,
    matched_tids: set[str],
) -> None:
    """Expected events matched to what SNS carried; the rest were never published (`lost_sns`)."""
    matcher = difflib.SequenceMatcher(a=expected, b=got, autojunk=False)
    matched = 0
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            matched_tids.add(recorded[block.b + offset])
            matched += 1
    result.lost_sns += len(expected) - matched


def check_stored(schedule: Schedule, job: TrackedJob | None, result: RoundResult) -> None:
    """The stored phase/status is the last upstream state the script served."""
    stored = None if job is None or job.snapshot is None else (job.snapshot.phase, job.snapshot.status)
    if stored != (schedule.final_phase, schedule.final_status):
        result.state_mismatches += 1
        result.problems.append(
            f"{schedule.key}: stored {stored}, expected {(schedule.final_phase, schedule.final_status)}"
        )


def check_false_alerts(sns: SnsView, matched_tids: set[str], result: RoundResult) -> None:
    """Distinct transitions seen on SNS that match no expected event (per destination: `routed`)."""
    unexpected = set(sns.first_seen) - matched_tids
    result.false_alerts += len(unexpected)
    for tid in sorted(unexpected)[:20]:
        event = sns.first_seen[tid].event if tid in sns.first_seen else "?"
        result.problems.append(f"false alert {tid} ({event})")


def routed_to_email(sns: SnsView, matched_tids: set[str]) -> set[str]:
    """The expected transitions the e-mail queue's subscription lets through."""
    return {tid for tid in matched_tids if sns.first_seen[tid].event in EMAILED_EVENTS}


def check_emails(
    routed: set[str],
    sent: Counter[str],
    topic: EmailTopic,
    dead_lettered: int,
    result: RoundResult,
    later_lives: frozenset[str] = frozenset(),
) -> None:
    """Each routed transition e-mailed once; repeats only where a publish's answer was lost.
    `later_lives`: the stories of re-tracked jobs' later lives (counted apart as well)."""
    ambiguous = topic.ambiguous
    later = {tid for tid in routed if story_of(tid) in later_lives}
    result.second_life_emails_expected = len(later)
    result.second_life_emailed = len(later & set(sent))
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
