"""`make demo`: the main job end to end, offline.

moto server (its own process) stands in for DynamoDB, SNS, SQS and Secrets Manager; the upstream
simulator and the Slack sink listen on real loopback sockets. Jobs are registered through the CLI
code path, then the real handler code runs cycle after cycle while the simulator walks each scripted
job through its statuses. The timeline shows every transition with the Slack message (as the sink
received it) and, for the events routed to e-mail (FAILED, CANCELED by default), the e-mail as the
alert e-mail topic sends it to its addresses. The demo checks itself: it exits 1 if any expected
transition is missing, duplicated or unexpected, if a routed event is not e-mailed exactly once (or an
unrouted one is), or if a job's last message lacks what it must show (size, rows of total, failure
reason...).

Every source walks a full life: Weaviate export, backup and restore; Zilliz Cloud imports through the
v1 controller and the v2 control plane; a self-hosted Milvus import; a Pinecone import. Upstream status
changes that are not transitions (TRANSFERRED, FINALIZING, Importing 40 -> 80...) are stored and shown
per cycle, but nobody is notified. To add a job, append a `DemoJob` to `JOBS`.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from jobwatch_tools.api_server import ApiServer
from jobwatch_tools.local import api_handler

from jobwatch.api import routes as api
from jobwatch.domain.humanize import format_progress
from jobwatch.domain.model import TrackedJob, Transition
from jobwatch.render.email import email_body, email_subject
from jobwatch.sources import get_source
from jobwatch_devkit.harness import Email, LocalDeployment
from jobwatch_devkit.processes import moto_process
from jobwatch_devkit.simulator import Step, UpstreamSimulator, fault_api_error, fault_http, hold, state
from jobwatch_devkit.slack_sink import SinkMessage, SlackSink

WIDTH = 100
EMAILED_EVENTS = frozenset({"FAILED", "CANCELED"})
"""The template's AlertEmailEvents default: what the e-mail queue's filter lets through."""
CYCLES = 12


@dataclass(frozen=True)
class DemoJob:
    source: str
    job_id: str
    steps: list[Step]
    expected: list[str]
    """Events the demo must see for this job, in order."""
    backend: str | None = None
    cluster_id: str | None = None
    collection: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    api_key: str | None = None
    secret: str | None = None
    must_show: tuple[str, ...] = ()
    """Texts the Slack message and the email of the job's last transition must both contain."""
    release_at: int | None = None
    """Cycle at which the demo releases the job's `hold()` step (`UpstreamSimulator.advance`)."""
    appears_at: int | None = None
    """Not registered: the job appears upstream at this cycle and a watch must discover it
    (0: it already existed, finished, before the watch was created: recorded, never notified)."""

    @property
    def name(self) -> str:
        return f"{self.source} {self.job_id}"


ARTICLE_SHARDS_RUNNING = {
    "Article": {
        "Xk3pQ9aLmN2b": {"status": "TRANSFERRING", "objectsExported": 120000},
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 250000},
    },
}
ARTICLE_SHARDS_DONE = {
    "Article": {
        "Xk3pQ9aLmN2b": {"status": "SUCCESS", "objectsExported": 498213},
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 501877},
    },
}
ARTICLE_SHARDS_FAILED = {
    "Article": {
        "Xk3pQ9aLmN2b": {
            "status": "FAILED",
            "objectsExported": 40000,
            "error": "upload parquet: context deadline exceeded",
        },
        "h7TzR1vBcW4e": {"status": "SUCCESS", "objectsExported": 501877},
    },
}

MILVUS_FILES = ("events/2026-11/part-1.parquet", "events/2026-11/part-2.parquet")
MILVUS_FILE_BYTES = 812_447_391
MILVUS_ROWS = 2_400_000


def milvus_files(*states: tuple[str, int], reason: str | None = None) -> dict[str, Any]:
    """`details` (one per file of MILVUS_FILES, each `(state, progress)`) and their summed `fileSize`,
    in the shape of shared/reference milvus-v2/describe.importing-80.partial.json. A file's rows follow
    its progress; a Failed file carries `reason`."""
    per_file = MILVUS_ROWS // len(MILVUS_FILES)
    details: list[dict[str, Any]] = []
    for name, (file_state, progress) in zip(MILVUS_FILES, states, strict=True):
        detail: dict[str, Any] = {
            "completeTime": "2026-11-20T09:41:07Z" if file_state == "Completed" else "",
            "fileName": f"[{name}]",
            "fileSize": MILVUS_FILE_BYTES,
            "importedRows": per_file * progress // 100,
            "progress": progress,
            "state": file_state,
            "totalRows": per_file,
        }
        if file_state == "Failed" and reason:
            detail["reason"] = reason
        details.append(detail)
    return {"details": details, "fileSize": MILVUS_FILE_BYTES * len(details)}


MILVUS_TIMEOUT = "import timeout: job ran longer than 300s"

JOBS = [
    DemoJob(
        "weaviate-export",
        "nightly-export",
        backend="s3",
        collection="Article",
        api_key="weaviate-demo-key",
        secret="jobwatch/weaviate-demo",
        steps=[
            state("STARTED"),
            state("TRANSFERRING", shards=ARTICLE_SHARDS_RUNNING),
            hold(),
            state("SUCCESS", shards=ARTICLE_SHARDS_DONE),
        ],
        expected=["STARTED", "SUCCEEDED"],
        must_show=("Objects exported", "1,000,090", "2/2 done"),
        release_at=4,  # the export is held at TRANSFERRING until cycle 4, then finishes
    ),
    DemoJob(
        "weaviate-export",
        "export-shard-failure",
        backend="s3",
        collection="Article",
        steps=[
            state("TRANSFERRING", shards=ARTICLE_SHARDS_RUNNING),
            state(
                "FAILED",
                shards=ARTICLE_SHARDS_FAILED,
                error="node weaviate-1 failed: upload parquet: context deadline exceeded <!channel>",
            ),
        ],
        expected=["STARTED", "FAILED"],
    ),
    DemoJob(
        "weaviate-export",
        "export-canceled",
        backend="gcs",
        collection="Product",
        steps=[state("TRANSFERRING"), state("TRANSFERRING"), state("CANCELED", error="export was canceled")],
        expected=["STARTED", "CANCELED"],
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-01j9medium",
        cluster_id="in01-7f3c2d",
        collection="medium_articles",
        steps=[
            state(ready=0.0),
            state(ready=0.4),
            fault_api_error(80010, "System is busy, please try again later"),
            state(ready=1.0),
        ],
        expected=["STARTED", "SUCCEEDED"],
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-01j9broken",
        cluster_id="in01-7f3c2d",
        collection="medium_articles",
        steps=[
            state(ready=0.0),
            state(ready=0.2),
            state(ready=0.2, error="file 2.parquet: field 'vector' has dim 768, expected 1536"),
        ],
        expected=["STARTED", "FAILED"],
    ),
    DemoJob(
        "weaviate-backup",
        "nightly-2026-11-20",
        backend="s3",
        collection="Article",
        steps=[state("STARTED"), state("TRANSFERRING"), state("SUCCESS", size=48.62)],
        expected=["STARTED", "SUCCEEDED"],
        must_show=("48.62 GiB before compression",),
    ),
    DemoJob(
        "weaviate-restore",
        "nightly-2026-11-19",
        backend="s3",
        collection="Article",
        steps=[
            state("STARTED"),
            state("TRANSFERRING"),
            state("TRANSFERRED"),  # files staged: not the end, restore goes on
            state("FINALIZING"),  # schema applied, can no longer be canceled
            state("SUCCESS"),
        ],
        expected=["STARTED", "SUCCEEDED"],
        # Restore status has no timestamps: any duration is what jobwatch observed, and says so.
        must_show=("observed",),
    ),
    DemoJob(
        "zilliz-import-v2",
        "job-02v2articles",
        cluster_id="in03-9a1b7e",
        collection="medium_articles",
        steps=[
            state("Pending", total_rows=100_000),
            # importedRows: what Zilliz Cloud's describe alias answers (Milvus body); getProgress may omit it.
            state("Importing", progress=45, total_rows=100_000, extra={"importedRows": 45_000}),
            state("Completed", total_rows=100_000, extra={"importedRows": 100_000}),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("100,000 of 100,000",),
    ),
    DemoJob(
        "milvus-import",
        "458021734452345601",
        collection="events",
        options=(("dbName", "analytics"),),
        steps=[
            state("Pending", total_rows=MILVUS_ROWS),  # no details before pre-import finishes
            state(
                "Importing",
                progress=40,
                rows=MILVUS_ROWS * 40 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("InProgress", 40), ("InProgress", 40)),
            ),
            # Every file Completed, the job still Importing at 80 %: sorting and building indexes.
            state(
                "Importing",
                progress=80,
                rows=MILVUS_ROWS,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("Completed", 100)),
            ),
            state(
                "Completed",
                rows=MILVUS_ROWS,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("Completed", 100)),
            ),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("2,400,000 of 2,400,000", "2/2 done", "analytics"),
    ),
    DemoJob(
        "milvus-import",
        "458021734452345602",
        collection="events",
        options=(("dbName", "analytics"),),
        steps=[
            state(
                "Importing",
                progress=45,
                rows=MILVUS_ROWS * 45 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("InProgress", 60), ("InProgress", 30)),
            ),
            state(
                "Importing",
                progress=55,
                rows=MILVUS_ROWS * 55 // 100,
                total_rows=MILVUS_ROWS,
                extra=milvus_files(("Completed", 100), ("InProgress", 10)),
            ),
            # Milvus resets progress and rows to 0 when a job fails; `reason` says why.
            state(
                "Failed",
                progress=0,
                rows=0,
                total_rows=0,
                error=MILVUS_TIMEOUT,
                extra=milvus_files(("Completed", 100), ("Failed", 10), reason=MILVUS_TIMEOUT),
            ),
        ],
        expected=["STARTED", "FAILED"],
        must_show=(MILVUS_TIMEOUT, "1/2 done · 1 failed", "part-2.parquet"),
    ),
    DemoJob(
        "pinecone-import",
        "101",
        collection="articles",
        api_key="pinecone-demo-key",
        secret="jobwatch/pinecone-demo",
        options=(("apiVersion", "2025-10"),),
        steps=[
            state("Pending"),
            state("InProgress", progress=35.5, rows=355_000),
            state("Completed", progress=100, rows=1_000_000),
        ],
        expected=["QUEUED", "STARTED", "SUCCEEDED"],
        must_show=("1,000,000",),
    ),
    DemoJob(
        "pinecone-import",
        "102",
        collection="articles",
        steps=[
            state("InProgress", progress=12, rows=120_000),
            state("InProgress", progress=20, rows=200_000),
            state("Cancelled", progress=20, rows=200_000),
        ],
        expected=["STARTED", "CANCELED"],
    ),
    # Issue 3: a job parked at 80 % "Importing" while every file says Completed (Milvus's real trap)
    # is reported STALLED once, then finishes; an endpoint that fails three polls in a row is
    # reported UNREACHABLE once and RECOVERED once when it answers again.
    DemoJob(
        "milvus-import",
        "454000000000000001",
        collection="clue_data",
        options=(("dbName", "analytics"),),
        steps=[
            state("Importing", progress=80, rows=520_161, total_rows=520_161, files=["5.parquet"]),
            hold(),
            state("Completed", progress=100, rows=520_161, total_rows=520_161, files=["5.parquet"]),
        ],
        expected=["STARTED", "STALLED", "SUCCEEDED"],
        release_at=11,
    ),
    DemoJob(
        "weaviate-export",
        "export-flaky-endpoint",
        backend="s3",
        collection="Article",
        steps=[
            state("TRANSFERRING", objects=1_000),
            fault_http(503),
            fault_http(503),
            fault_http(502),
            state("TRANSFERRING", objects=5_000),
            state("SUCCESS", objects=9_000),
        ],
        expected=["STARTED", "UNREACHABLE", "RECOVERED", "SUCCEEDED"],
    ),
]

WATCHED_CLUSTER = "in01-watched"
JOBS += [
    DemoJob(
        "zilliz-import-v1",
        "job-finished-before-the-watch",
        cluster_id=WATCHED_CLUSTER,
        collection="products",
        steps=[state(ready=1.0)],
        expected=[],
        appears_at=0,
    ),
    DemoJob(
        "zilliz-import-v1",
        "job-found-by-the-watch",
        cluster_id=WATCHED_CLUSTER,
        collection="products",
        steps=[state(ready=0.3), state(ready=1.0)],
        expected=["STARTED", "SUCCEEDED"],
        appears_at=3,
    ),
]

DEMO_SETTINGS = {
    "JOBWATCH_STALL_AFTER_S": "4",
    "JOBWATCH_UNREACHABLE_AFTER": "3",
    "JOBWATCH_ADAPTIVE_POLLING": "false",
}
"""The demo compresses time: a stall threshold of seconds instead of 30 minutes, and every job polled
every cycle (adaptive polling would space a stalled or unreachable job out by minutes)."""
CYCLE_PAUSE_S = 0.8


def rule(title: str = "", char: str = "─") -> str:
    return f"{char * 3} {title} ".ljust(WIDTH, char) if title else char * WIDTH


def slack_as_text(message: SinkMessage) -> str:
    """A terminal rendering of a Block Kit payload: what a person would see in the channel."""
    lines: list[str] = []
    for block in message.blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"**{block['text']['text']}**")
        elif kind == "section":
            if "text" in block:
                lines.extend(block["text"]["text"].splitlines())
            for item in block.get("fields", []):
                lines.append("  " + item["text"].replace("\n", " "))
        elif kind == "context":
            lines.append("  " + " · ".join(el.get("text", "") for el in block.get("elements", [])))
        elif kind == "divider":
            lines.append("  ---")
    lines.append(f"(notification text: {message.text})")
    return "\n".join(lines)


def indent(text: str) -> str:
    return textwrap.indent(text, "    │ ", lambda _line: True)


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


def register(api_url: str, sim_url: str, sim: UpstreamSimulator) -> None:
    """Register every job, and one watch, through the HTTP API (`jobwatch api serve`)."""
    from jobwatch.adapters import aws

    with httpx.Client(base_url=api_url, timeout=30) as api:
        for job in JOBS:
            if job.appears_at is not None:
                if job.appears_at == 0:
                    add_upstream(sim, job)
                continue
            add_upstream(sim, job)
            if job.secret and job.api_key:
                aws.secretsmanager().create_secret(Name=job.secret, SecretString=job.api_key)
            body: dict[str, object] = {
                "source": job.source,
                "endpoint": sim_url,
                "jobId": job.job_id,
                "labels": {"team": "search"},
                "options": dict(job.options),
            }
            for name, value in (
                ("backend", job.backend),
                ("clusterId", job.cluster_id),
                ("secretName", job.secret),
            ):
                if value:
                    body[name] = value
            answer = api.post("/jobs", json=body)
            if answer.status_code != 201:
                raise SystemExit(
                    f"demo: POST /jobs for {job.job_id} answered {answer.status_code}: {answer.text}"
                )
        watch = {
            "kind": "zilliz-cloud-v1",
            "endpoint": sim_url,
            "clusterId": WATCHED_CLUSTER,
            "labels": {"team": "catalog"},
        }
        answer = api.post("/watches", json=watch)
        if answer.status_code != 201:
            raise SystemExit(f"demo: POST /watches answered {answer.status_code}: {answer.text}")


def print_transition(t: Transition, slack: SinkMessage | None, emails: list[Email]) -> None:
    previous = t.previous.phase.value if t.previous else "∅"
    print(rule(f"{t.event} · {t.source} {t.job_id} ({previous} → {t.current.phase.value})"))
    print("  Slack message:")
    print(indent(slack_as_text(slack)) if slack else "    (no Slack message received!)")
    mine = [e for e in emails if e.transition_id == t.transition_id]
    if t.event not in EMAILED_EVENTS:
        print(f"  E-mail: not routed ({t.event} is not in AlertEmailEvents)" + (" but SENT!" if mine else ""))
    for email in mine:
        print("  E-mail (alert e-mail topic):")
        print(indent(f"Subject: {email.subject}\n\n{email.body}"))
    if t.event in EMAILED_EVENTS and not mine:
        print("  E-mail: (none received!)")


Seen = dict[str, tuple[str, float | None]]
"""Job key -> (upstream status, progress) as last stored."""


def print_quiet_changes(jobs: list[TrackedJob], seen: Seen, notified: set[str]) -> None:
    """Status or progress changes inside one phase: stored, shown here, never notified (not a transition)."""
    for job in sorted(jobs, key=lambda j: job_index(j.spec.source, j.spec.job_id)):
        snapshot = job.snapshot
        if snapshot is None:
            continue
        now = (snapshot.status, snapshot.progress)
        before = seen.get(job.key)
        seen[job.key] = now
        if before is None or before == now or job.key in notified:
            continue
        if before[0] == snapshot.status:
            change = f"{snapshot.status} {format_progress(before[1])} → {format_progress(snapshot.progress)}"
        else:
            change = f"{before[0]} → {snapshot.status} ({format_progress(snapshot.progress)})"
        print(
            f"  · {job.spec.source} {job.spec.job_id}: {change}, still {snapshot.phase.value}: no transition"
        )
        facts = get_source(job.spec.source).facts(job.spec, snapshot)
        if facts:
            print("      " + " · ".join(f"{fact.label}: {fact.value}" for fact in facts))


def job_index(source: str, job_id: str) -> int:
    """Position in JOBS: output follows the list, whatever order SNS/SQS or DynamoDB return things in."""
    names = [(job.source, job.job_id) for job in JOBS]
    return names.index((source, job_id)) if (source, job_id) in names else len(names)


def run_demo() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("JOBWATCH_CLI_LOG_LEVEL", "ERROR")
    moto = moto_process()
    sim = UpstreamSimulator()
    sink = SlackSink()
    moto.start()
    try:
        sim_url = sim.start()
        sink.start()
        deployment = LocalDeployment(moto.url, sink.url, extra_env=DEMO_SETTINGS)
        print(rule("jobwatch demo", "═"))
        print(f"moto server {moto.url} · upstream simulator {sim_url} · Slack sink {sink.url}")
        print(
            f"stack created from template.yaml: table {deployment.settings.table}, "
            f"topic {deployment.settings.topic_arn.rsplit(':', 1)[-1]}"
        )
        api_server = ApiServer(api_handler, api.ROUTES).start()
        try:
            register(api_server.url, sim_url, sim)
        finally:
            api_server.stop()
        sources = sorted({job.source for job in JOBS})
        registered = sum(1 for job in JOBS if job.appears_at is None)
        print(
            f"registered {registered} jobs of {len(sources)} sources and one watch (Zilliz cluster "
            f"{WATCHED_CLUSTER}) through the HTTP API (`jobwatch api serve`, POST /jobs, POST /watches)\n"
        )
        seen: list[Transition] = []
        statuses: Seen = {}
        for cycle in range(1, CYCLES + 1):
            if cycle > 1:
                time.sleep(CYCLE_PAUSE_S)  # real time passes, so the parked import can stall
            for job in JOBS:
                if job.appears_at == cycle:
                    add_upstream(sim, job)
                    print(
                        f"  (upstream) a new import {job.job_id} starts on watched cluster {job.cluster_id}"
                    )
                if job.release_at == cycle:
                    sim.advance(job.job_id, source=job.source)  # release a held step
            report = deployment.poll()
            delivery = deployment.deliver()
            emailed = deployment.deliver_email()
            published = deployment.published()
            new = published[len(seen) :]
            seen = published
            print(
                rule(
                    f"cycle {cycle}: polled {report.polled}, transitions {report.transitions}, "
                    f"unchanged {report.unchanged + report.updated}, poll errors {report.poll_errors}, "
                    f"Slack posts {delivery.delivered}, e-mails {emailed.delivered}"
                    + (f", discovered by the watch {report.discovered}" if report.discovered else ""),
                    "═",
                )
            )
            for error in report.errors:
                cause = f"{error['jobId']}: {error['error']}"
                print(f"  poll error (logged, job unchanged, nobody notified): {cause}")
            print_quiet_changes(deployment.jobs(), statuses, {t.job_key for t in new})
            messages = sink.messages()
            emails = deployment.emails()
            for t in sorted(new, key=lambda t: job_index(t.source, t.job_id)):
                print_transition(t, slack_for(t, messages), emails)
        return verify(seen, sink.messages(), deployment.emails())
    finally:
        sink.stop()
        sim.stop()
        moto.stop()


def slack_for(t: Transition, messages: list[SinkMessage]) -> SinkMessage | None:
    return next((m for m in messages if t.transition_id in m.raw), None)


def verify(published: list[Transition], slack: list[SinkMessage], emails: list[Email]) -> int:
    problems: list[str] = []
    emailed = Counter(e.transition_id for e in emails)
    routed = {t.transition_id for t in published if t.event in EMAILED_EVENTS}
    for t in published:
        want = 1 if t.transition_id in routed else 0
        if emailed[t.transition_id] != want:
            problems.append(
                f"{t.event} {t.transition_id} e-mailed {emailed[t.transition_id]} times, expected {want}"
            )
    unknown = set(emailed) - {t.transition_id for t in published}
    if unknown:
        problems.append(f"e-mails for transitions nobody published: {sorted(unknown)}")
    for job in JOBS:
        transitions = [t for t in published if (t.source, t.job_id) == (job.source, job.job_id)]
        events = [t.event for t in transitions]
        if events != job.expected:
            problems.append(f"{job.name}: expected {job.expected}, SNS carried {events}")
        if job.must_show and transitions:
            last = transitions[-1]
            message = slack_for(last, slack)
            texts = {
                "Slack message": slack_as_text(message) if message else "",
                "email": f"{email_subject(last)}\n{email_body(last)}",
            }
            for channel, text in texts.items():
                missing = [want for want in job.must_show if want not in text]
                if missing:
                    problems.append(f"{job.name}: the {last.event} {channel} does not show {missing}")
    if len(slack) != len(published):
        problems.append(f"{len(published)} SNS transitions but {len(slack)} Slack messages")
    if any("<!channel>" in message.raw for message in slack):
        problems.append("an upstream '<!channel>' reached Slack unescaped")
    untouched = sorted({job.source for job in JOBS} - {t.source for t in published})
    if untouched:
        problems.append(f"no transition at all for {untouched}")
    print(rule("summary", "═"))
    print(
        f"{len(JOBS)} jobs of {len({job.source for job in JOBS})} sources: "
        f"{len(published)} transitions, {len(published)} SNS messages, {len(slack)} Slack messages, "
        f"{len(emails)} e-mails ({', '.join(sorted(EMAILED_EVENTS))}); "
        f"expected {sum(len(j.expected) for j in JOBS)}"
    )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("demo OK" if not problems else "demo FAILED")
    return 0 if not problems else 1


def main() -> int:
    return run_demo()


if __name__ == "__main__":
    sys.exit(main())
