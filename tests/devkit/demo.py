"""`make demo`: the main job end to end, offline.

moto server (its own process) stands in for DynamoDB, SNS, SQS and Secrets Manager; the upstream
simulator and the Slack sink listen on real loopback sockets. Jobs are registered through the CLI
code path, then the real handler code runs cycle after cycle while the simulator walks each scripted
job through its statuses. The timeline shows every transition with the Slack message (as the sink
received it) and the email (as SNS sends it to email subscribers). The demo checks itself: it exits 1
if any expected transition is missing, duplicated or unexpected.
"""

from __future__ import annotations

import os
import sys
import textwrap
from dataclasses import dataclass

from jobwatch.cli import main as jobwatch_cli
from jobwatch.messages import email_body, email_subject
from jobwatch.model import Transition
from jobwatch_devkit.harness import LocalDeployment
from jobwatch_devkit.processes import moto_process
from jobwatch_devkit.simulator import Step, UpstreamSimulator, fault_api_error, hold, state
from jobwatch_devkit.slack_sink import SinkMessage, SlackSink

WIDTH = 100
CYCLES = 7


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
]


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


def register(deployment: LocalDeployment, sim_url: str, sim: UpstreamSimulator) -> None:
    from jobwatch.adapters import aws

    for job in JOBS:
        sim.add_job(
            job.source,
            job.job_id,
            job.steps,
            backend=job.backend,
            cluster_id=job.cluster_id,
            api_key=job.api_key,
            collection=job.collection,
        )
        if job.secret and job.api_key:
            aws.secretsmanager().create_secret(Name=job.secret, SecretString=job.api_key)
        argv = ["track", job.source, "--endpoint", sim_url, "--job-id", job.job_id, "--label", "team=search"]
        if job.backend:
            argv += ["--backend", job.backend]
        if job.cluster_id:
            argv += ["--cluster-id", job.cluster_id]
        if job.secret:
            argv += ["--secret", job.secret]
        for key, value in job.options:
            argv += ["--option", f"{key}={value}"]
        if jobwatch_cli(argv) != 0:
            raise SystemExit(f"demo: could not register {job.job_id}")


def print_transition(t: Transition, slack: SinkMessage | None) -> None:
    previous = t.previous.phase.value if t.previous else "∅"
    print(rule(f"{t.event} · {t.source} {t.job_id} ({previous} → {t.current.phase.value})"))
    print("  Slack message:")
    print(indent(slack_as_text(slack)) if slack else "    (no Slack message received!)")
    print("  Email:")
    print(indent(f"Subject: {email_subject(t)}\n\n{email_body(t)}"))


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
        deployment = LocalDeployment(moto.url, sink.url)
        print(rule("jobwatch demo", "═"))
        print(f"moto server {moto.url} · upstream simulator {sim_url} · Slack sink {sink.url}")
        print(
            f"stack created from template.yaml: table {deployment.settings.table}, "
            f"topic {deployment.settings.topic_arn.rsplit(':', 1)[-1]}"
        )
        register(deployment, sim_url, sim)
        print(f"registered {len(JOBS)} jobs through `jobwatch track`\n")
        seen: list[Transition] = []
        for cycle in range(1, CYCLES + 1):
            if cycle == 4:
                sim.advance("nightly-export")  # release the held export so it can finish
            report = deployment.poll()
            delivery = deployment.deliver()
            published = deployment.published()
            new = published[len(seen) :]
            seen = published
            print(
                rule(
                    f"cycle {cycle}: polled {report.polled}, transitions {report.transitions}, "
                    f"unchanged {report.unchanged + report.updated}, poll errors {report.poll_errors}, "
                    f"Slack posts {delivery.delivered}",
                    "═",
                )
            )
            for error in report.errors:
                print(
                    f"  poll error (logged, job unchanged, nobody notified): {error['jobId']}: {error['error']}"
                )
            messages = sink.messages()
            for t in new:
                print_transition(t, next((m for m in messages if t.transition_id in m.raw), None))
        return verify(seen, sink.messages())
    finally:
        sink.stop()
        sim.stop()
        moto.stop()


def verify(published: list[Transition], slack: list[SinkMessage]) -> int:
    problems: list[str] = []
    for job in JOBS:
        events = [t.event for t in published if t.job_id == job.job_id]
        if events != job.expected:
            problems.append(f"{job.job_id}: expected {job.expected}, SNS carried {events}")
    if len(slack) != len(published):
        problems.append(f"{len(published)} SNS transitions but {len(slack)} Slack messages")
    if any("<!channel>" in message.raw for message in slack):
        problems.append("an upstream '<!channel>' reached Slack unescaped")
    print(rule("summary", "═"))
    print(
        f"{len(published)} transitions, {len(published)} SNS messages, {len(slack)} Slack messages; "
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
