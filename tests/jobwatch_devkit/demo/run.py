"""Running the demo: start everything, register jobs and routes through the API, run the cycles,
tell the story as it happens, show the channels, check it all."""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jobwatch_tools.api_server import ApiServer
from jobwatch_tools.local import api_handler
from rich.text import Text

from jobwatch.adapters import aws
from jobwatch.api import routes as api
from jobwatch.delivery.records import BatchReport
from jobwatch.domain.model import TrackedJob, Transition
from jobwatch.observability import logger
from jobwatch_devkit.harness import REPO_ROOT, LocalDeployment
from jobwatch_devkit.processes import moto_process
from jobwatch_devkit.simulator import UpstreamSimulator
from jobwatch_devkit.slack_sink import SlackSink
from jobwatch_devkit.webhook_receiver import WebhookReceiver

from . import screen as lines
from .checks import Outcome, check_all
from .observe import TAP_RULE, BusTap, Observer, Seen
from .routes import (
    BOT_TOKEN_SECRET,
    ONCALL_CHANNEL,
    TEAM_CHANNEL,
    WEBHOOK_KEY_SECRET,
    Dest,
    describe_route,
    expected_destinations,
    routes_document,
)
from .scenario import (
    CYCLE_PAUSE_S,
    CYCLES,
    DEMO_SETTINGS,
    JOBS,
    STALL_AFTER_S,
    TEAM,
    WATCH_TEAM,
    WATCHED_CLUSTER,
    DemoJob,
    job_index,
)
from .screen import Screen

LOG_PATH = REPO_ROOT / ".demo" / "demo.log"


@contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Every log line of this process (the functions' JSON logs, libraries' warnings) into one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as log:
        handler = logger.registered_handler
        stream = handler.setStream(log) if isinstance(handler, logging.StreamHandler) else None
        fallback = logging.StreamHandler(log)  # other libraries' warnings; jobwatch's own lines are JSON
        fallback.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fallback.addFilter(lambda record: not record.name.startswith(logger.name))
        root = logging.getLogger()
        root.addHandler(fallback)
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(fallback)
            if isinstance(handler, logging.StreamHandler) and stream is not None:
                handler.setStream(stream)


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- setting up -----------------------------------------------------------------------------------------


def add_upstream(sim: UpstreamSimulator, job: DemoJob) -> None:
    sim.add_job(
        job.source,
        job.job_id,
        job.steps,
        backend=job.backend,
        cluster_id=job.cluster_id,
        api_key=job.api_key,
        collection=job.collection,
    )


def job_body(job: DemoJob, sim_url: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": job.source,
        "endpoint": sim_url,
        "jobId": job.job_id,
        "labels": {"team": job.team},
        "options": dict(job.options),
    }
    for name, value in (("backend", job.backend), ("clusterId", job.cluster_id), ("secretName", job.secret)):
        if value:
            body[name] = value
    return body


def expect(answer: httpx.Response, status: int, what: str) -> Any:
    if answer.status_code != status:
        raise SystemExit(f"demo: {what} answered {answer.status_code}: {answer.text}")
    return answer.json()


def register(client: httpx.Client, sim_url: str, sim: UpstreamSimulator) -> None:
    """Every job, and one watch, through the HTTP API (`jobwatch api serve`: POST /jobs, POST /watches)."""
    for job in JOBS:
        if job.appears_at is not None:
            if job.appears_at == 0:
                add_upstream(sim, job)
            continue
        add_upstream(sim, job)
        if job.secret and job.api_key:
            aws.secretsmanager().create_secret(Name=job.secret, SecretString=job.api_key)
        expect(client.post("/jobs", json=job_body(job, sim_url)), 201, f"POST /jobs for {job.job_id}")
    watch = {
        "kind": "zilliz-cloud-v1",
        "endpoint": sim_url,
        "clusterId": WATCHED_CLUSTER,
        "labels": {"team": WATCH_TEAM},
    }
    expect(client.post("/watches", json=watch), 201, "POST /watches")


def configure_routes(client: httpx.Client, webhook_url: str, bus: str) -> list[dict[str, Any]]:
    """The routes through the HTTP API (`PUT /routes`, as `jobwatch routes apply` sends them)."""
    diff = expect(client.put("/routes", json=routes_document(webhook_url, bus)), 200, "PUT /routes")
    if diff.get("changed") or diff.get("removed"):
        raise SystemExit(f"demo: a fresh stack already had routes: {diff}")
    stored: list[dict[str, Any]] = expect(client.get("/routes"), 200, "GET /routes")["routes"]
    return stored


# -- the run ----------------------------------------------------------------------------------------------


@dataclass
class Story:
    """The timeline as it happens; keeps what it showed for the self-check."""

    screen: Screen
    published: list[Transition] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    statuses: dict[str, lines.Status] = field(default_factory=dict)
    delivery: BatchReport = field(default_factory=BatchReport)

    def show_cycle(self, new: list[Transition], arrived: list[Seen], jobs: list[TrackedJob]) -> None:
        self.show_quiet_changes(jobs, {t.job_key for t in new})
        ids = {t.transition_id for t in new}
        for t in sorted(new, key=lambda t: job_index(t.source, t.job_id)):
            mine = [s for s in arrived if s.transition_id == t.transition_id]
            expected = expected_destinations(t)
            self.screen.print(lines.transition_line(t, mine, expected))
            self.screen.print_all(lines.message_lines(mine))
            missing = lines.missing_line(expected, mine)
            if missing is not None:
                self.screen.print(missing)
        late = [s for s in arrived if s.transition_id not in ids]
        if late:
            self.screen.print(
                lines.note_line(f"{len(late)} late deliveries of earlier transitions:", "yellow")
            )
            self.screen.print_all(lines.message_lines(late))

    def show_quiet_changes(self, jobs: list[TrackedJob], notified: set[str]) -> None:
        """Upstream status or progress changes inside one phase: stored, never notified."""
        for job in sorted(jobs, key=lambda j: job_index(j.spec.source, j.spec.job_id)):
            if job.snapshot is None:
                continue
            now = (job.snapshot.status, job.snapshot.progress)
            before, self.statuses[job.key] = self.statuses.get(job.key), now
            if before is not None and before != now and job.key not in notified:
                name = f"{job.spec.source} {job.spec.job_id}"
                self.screen.print(lines.quiet_change_line(name, before, now, job.snapshot.phase.value))


def upstream_news(sim: UpstreamSimulator, cycle: int) -> list[str]:
    """What changes upstream before this cycle: jobs appearing on the watched cluster, held steps released."""
    news = []
    for job in JOBS:
        if job.appears_at == 0 and cycle == 1:
            news.append(
                f"upstream: {job.job_id} had finished on watched cluster {job.cluster_id} before the watch"
            )
        if job.appears_at == cycle:
            add_upstream(sim, job)
            news.append(f"upstream: a new import {job.job_id} starts on watched cluster {job.cluster_id}")
        if job.release_at == cycle:
            sim.advance(job.job_id, source=job.source)  # release a held step
    return news


def run_cycles(story: Story, deployment: LocalDeployment, sim: UpstreamSimulator, observer: Observer) -> None:
    """Each cycle: the poller's code path, then the notifier's draining its queue; then what arrived where."""
    screen = story.screen
    first_poll = time.monotonic()
    for cycle in range(1, CYCLES + 1):
        if cycle > 1:
            time.sleep(CYCLE_PAUSE_S)
        if any(job.stalled_by == cycle for job in JOBS):  # parked since cycle 1: let it be stalled now
            time.sleep(max(0.0, first_poll + STALL_AFTER_S + 0.5 - time.monotonic()))
        news = upstream_news(sim, cycle)
        clock = time.strftime("%H:%M:%S")
        report = deployment.poll()
        if cycle == 1:
            first_poll = time.monotonic()  # the parked jobs' snapshots were stored by now
        story.delivery.add(deployment.deliver())
        published = deployment.published()
        new, story.published = published[len(story.published) :], published
        arrived = observer.collect([t.transition_id for t in published])
        story.seen += arrived
        screen.print(
            lines.cycle_line(
                clock, cycle, report.polled, report.transitions, report.poll_errors, report.discovered
            )
        )
        screen.print_all(lines.upstream_line(text) for text in news)
        for error in report.errors:
            who = error.get("jobId") or error.get("watchId") or "?"
            screen.print(lines.poll_error_line(who, error.get("error", "")))
        story.show_cycle(new, arrived, deployment.jobs())


def show_channels(screen: Screen, sink: SlackSink) -> None:
    for channel, title in (
        (TEAM_CHANNEL, f"{Dest.TEAM.value}: team={TEAM} jobs, one living thread each (root = current state)"),
        (ONCALL_CHANNEL, f"{Dest.ONCALL.value}: FAILED and LOST of any job, mentioning the on-call group"),
    ):
        screen.rule(f"Slack {title}")
        screen.print_all(lines.channel_lines(sink.channel_view(channel)))


SAMPLE_EVENTS = ("SUCCEEDED", "STALLED", "FAILED")


def samples(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first transition event of each of SAMPLE_EVENTS among these events."""
    found = (next((item for item in items if item.get("event") == event), None) for event in SAMPLE_EVENTS)
    return [item for item in found if item is not None]


def show_machines(screen: Screen, outcome: Outcome, bus: str) -> None:
    """What the programs got (the signed webhook, the bus), what was e-mailed, the deployment's webhook."""
    received = outcome.received
    verified = [r for r in received if r.verified]
    screen.rule(f"{Dest.WEBHOOK.value}: the devkit receiver checks every signature itself (docs/webhooks.md)")
    screen.print(
        f"{len(received)} requests: {len(verified)} verified, {len(received) - len(verified)} refused"
    )
    by_id = {r.transition_id: r for r in verified}
    for event in samples([r.event for r in verified]):
        screen.print(lines.webhook_sample_line(event, by_id[str(event.get("transitionId"))].headers))

    screen.rule(f"{Dest.BUS.value}: bus {bus} → rule {TAP_RULE} → SQS queue, read like any consumer's")
    kinds = Counter(str(e.get("detail-type")) for e in outcome.bus_events)
    screen.print(
        f"{len(outcome.bus_events)} events: " + ", ".join(f"{n} {kind!r}" for kind, n in kinds.items())
    )
    envelopes = {str((e.get("detail") or {}).get("transitionId")): e for e in outcome.bus_events}
    for detail in samples([e.get("detail") or {} for e in outcome.bus_events]):
        screen.print(lines.bus_sample_line(envelopes[str(detail.get("transitionId"))]))

    screen.rule(f"{Dest.EMAIL.value}: what the alert e-mail topic sent its subscribers (route alert-email)")
    screen.print(f"{len(outcome.emails)} e-mails:")
    screen.print_all(lines.note_line(f"✉ {email.subject}") for email in outcome.emails)
    screen.rule(f"{Dest.SLACK_WEBHOOK.value}: the deployment's own incoming webhook (route everything)")
    screen.print(
        f"{len(outcome.slack_posts)} messages, one post per transition (webhooks cannot thread or edit)"
    )


def run_demo(screen: Screen | None = None) -> int:
    screen = screen or Screen()
    started = time.monotonic()
    with logs_to(LOG_PATH):
        try:
            code = _run(screen)
        except BaseException:
            screen.print(
                Text(f"demo FAILED: it stopped (below) · log: {relative(LOG_PATH)}", style="bold red")
            )
            raise
    verdict = Text("demo OK" if code == 0 else "demo FAILED", style="bold green" if code == 0 else "bold red")
    verdict.append(f"  in {time.monotonic() - started:.1f} s · log: {relative(LOG_PATH)}", style="dim")
    screen.print(verdict)
    return code


def _run(screen: Screen) -> int:
    screen.rule(
        f"jobwatch demo: {len(JOBS)} vector-database jobs watched, routed and checked, offline", heavy=True
    )
    screen.print(
        lines.setting_line("log", f"{relative(LOG_PATH)}: every log line; the screen tells the story")
    )
    sources = {job.source for job in JOBS}
    moto, sim, sink = moto_process(), UpstreamSimulator(), SlackSink()
    key = secrets.token_urlsafe(32)
    receiver = WebhookReceiver(key)
    moto.start()
    try:
        sim_url = sim.start()
        sink.start()
        receiver.start()
        env = {**DEMO_SETTINGS, "JOBWATCH_SLACK_API_URL": sink.api_url}
        deployment = LocalDeployment(moto.url, sink.url, extra_env=env)
        aws.events.cache_clear()  # the harness's clear_process_caches() does not cover EventBridge's client
        bus = BusTap.stack_bus()
        tap = BusTap(bus)
        aws.secretsmanager().create_secret(Name=BOT_TOKEN_SECRET, SecretString=sink.bot_token)
        aws.secretsmanager().create_secret(Name=WEBHOOK_KEY_SECRET, SecretString=key)
        settings = deployment.settings
        screen.print_all(
            [
                lines.setting_line(
                    "AWS",
                    f"moto server {moto.url}: template.yaml's table {settings.table}, topics, queues, "
                    f"bus {bus}",
                ),
                lines.setting_line(
                    "secrets", f"{BOT_TOKEN_SECRET} (bot token), {WEBHOOK_KEY_SECRET} (signing key)"
                ),
                lines.setting_line(
                    "upstream", f"simulator {sim_url}: {len(sources)} sources, scripted job by job"
                ),
                lines.setting_line(
                    "Slack", f"sink {sink.base_url}: incoming webhook, and Web API (JOBWATCH_SLACK_API_URL)"
                ),
                lines.setting_line("webhook", f"receiver {receiver.url}, shares only the signing key"),
            ]
        )
        api_server = ApiServer(api_handler, api.ROUTES).start()
        try:
            with httpx.Client(base_url=api_server.url, timeout=30) as client:
                register(client, sim_url, sim)
                stored = configure_routes(client, receiver.url, bus)
        finally:
            api_server.stop()
        registered = sum(1 for job in JOBS if job.appears_at is None)
        screen.print(
            lines.setting_line(
                "API",
                f"{api_server.url}: POST /jobs {registered} times, POST /watches (Zilliz cluster "
                f"{WATCHED_CLUSTER}), PUT /routes:",
            )
        )
        screen.print_all(lines.route_lines([describe_route(route) for route in stored]))
        screen.rule("timeline: each poll cycle, each transition, each message as delivered")
        story = Story(screen)
        observer = Observer(deployment, sink, receiver, tap)
        run_cycles(story, deployment, sim, observer)
        outcome = Outcome(
            published=story.published,
            seen=story.seen,
            team=sink.channel_view(TEAM_CHANNEL),
            oncall=sink.channel_view(ONCALL_CHANNEL),
            received=receiver.received(),
            bus_events=tap.events,
            emails=deployment.emails(),
            slack_posts=sink.messages(),
            slack_rejected=sink.rejected(),
            slack_failed_calls=[c for c in sink.api_calls() if not c.ok],
            dead_lettered=story.delivery.dead_lettered,
        )
        show_channels(screen, sink)
        show_machines(screen, outcome, bus)
        results = check_all(JOBS, outcome)
        screen.rule("self-check", heavy=True)
        screen.print_all(lines.check_lines(results))
        return 0 if all(result.ok for result in results) else 1
    finally:
        receiver.stop()
        sink.stop()
        sim.stop()
        moto.stop()


def main() -> int:
    return run_demo()
