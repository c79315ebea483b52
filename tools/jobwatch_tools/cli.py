"""The `jobwatch` command: local operation of the same code paths the Lambda functions run.

Registration commands (`track`, `list`, `show`, `untrack`, `test`, `watch`, `unwatch`, `watches`,
`discover`) build the HTTP API's own request models and call `jobwatch.operations`, exactly as the
API handler does: one validation and one behaviour for both. Logs go to stderr; stdout carries only
the command's result, so `eval "$(jobwatch local-stack)"` and `jobwatch check --json | jq` work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobwatch.domain.errors import PollError, RegistrationError
from jobwatch.domain.model import Snapshot
from jobwatch.settings import SettingsError
from jobwatch.sources import source_names

if TYPE_CHECKING:
    from jobwatch.app.models import JobResource
    from jobwatch.app.operations import Operations

EXIT_USAGE = 2
EXIT_NOT_FOUND = 1
WATCH_KINDS = ("zilliz-cloud-v1", "zilliz-cloud-v2", "milvus", "weaviate-backups")


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"jobwatch: {message}", file=sys.stderr)
    return code


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help=f"job source: {', '.join(source_names())}")
    parser.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--backend", help="Weaviate backup backend (s3, gcs, azure, filesystem)")
    parser.add_argument("--cluster-id", help="Zilliz Cloud cluster id")
    parser.add_argument(
        "--option", action="append", metavar="K=V", help="source option (bucket, path, dbName, apiVersion)"
    )


def _add_registration_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret", help="name of the Secrets Manager secret holding the API key")
    parser.add_argument("--label", action="append", metavar="K=V")
    parser.add_argument(
        "--notify-event", action="append", metavar="EVENT[,EVENT]", help="publish only these events"
    )
    parser.add_argument("--stall-after", type=int, metavar="S", help="seconds without progress = STALLED")
    parser.add_argument("--max-duration", type=int, metavar="S", help="seconds running = OVERDUE")


def _job_fields(args: argparse.Namespace) -> dict[str, Any]:
    from jobwatch.app.registration import parse_pairs

    return {
        "source": args.source,
        "endpoint": args.endpoint,
        "job_id": args.job_id,
        "backend": args.backend,
        "cluster_id": args.cluster_id,
        "options": parse_pairs(args.option, "option"),
    }


def _notify_fields(args: argparse.Namespace) -> dict[str, Any] | None:
    """`--notify-event/--stall-after/--max-duration` as the API's `notify` object (None: defaults)."""
    events = [e.strip() for text in args.notify_event or [] for e in text.split(",") if e.strip()]
    notify: dict[str, Any] = {}
    if events:
        notify["events"] = events
    if args.stall_after is not None:
        notify["stall_after_s"] = args.stall_after
    if args.max_duration is not None:
        notify["max_duration_s"] = args.max_duration
    return notify or None


def _operations() -> Operations:
    from jobwatch_tools.local import operations

    return operations()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _snapshot_text(snapshot: Snapshot) -> str:
    from jobwatch.domain.humanize import format_progress

    lines = [f"phase:     {snapshot.phase.value}", f"status:    {snapshot.status}"]
    if not snapshot.status_known:
        lines.append("           (status unknown to jobwatch: treated as RUNNING, never alerted on)")
    lines.append(f"progress:  {format_progress(snapshot.progress)}")
    if snapshot.started_at:
        lines.append(f"started:   {snapshot.started_at}")
    if snapshot.completed_at:
        lines.append(f"completed: {snapshot.completed_at}")
    if snapshot.error:
        lines.append(f"error:     {snapshot.error}")
    if snapshot.details:
        lines.append("details:   " + json.dumps(snapshot.details, sort_keys=True))
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    from jobwatch.app.registration import build_spec
    from jobwatch.domain.endpoints import EndpointPolicy
    from jobwatch.settings import EndpointSettings
    from jobwatch_tools.local import check_job

    try:
        spec = build_spec(_job_fields(args), EndpointPolicy.from_settings(EndpointSettings.from_env()))
    except RegistrationError as exc:
        return _fail(str(exc))
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            return _fail(f"environment variable {args.api_key_env} is empty or unset")
    try:
        snapshot = check_job(spec, api_key)
    except PollError as exc:
        return _fail(f"poll failed: {exc}")
    if args.json:
        print(json.dumps(snapshot.to_wire(), indent=2, sort_keys=True))
    else:
        print(_snapshot_text(snapshot))
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    from jobwatch.app.registration import parse_job_registration, parse_pairs

    try:
        fields = _job_fields(args)
        fields["secret_name"] = args.secret
        fields["labels"] = parse_pairs(args.label, "label")
        fields["notify"] = _notify_fields(args)
        job, created = _operations().track(parse_job_registration(fields))
    except RegistrationError as exc:
        return _fail(f"registration refused, nothing written: {exc}")
    verb = "tracking" if created else "already tracked"
    print(f"{verb} {job.key} ({job.spec.source} {job.spec.job_id})")
    return 0


def _job_row(job: JobResource) -> list[str]:
    from jobwatch.domain.humanize import format_progress

    snap = job.snapshot
    labels = ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))
    return [
        job.key,
        job.spec.job_id,
        snap.phase.value if snap else "(not polled yet)",
        format_progress(snap.progress) if snap else "",
        job.updated_at,
        labels,
    ]


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_list(args: argparse.Namespace) -> int:
    from jobwatch.app.operations import MAX_PAGE_SIZE
    from jobwatch.domain.model import Phase

    operations = _operations()
    jobs: list[JobResource] = []
    token: str | None = None
    try:
        phase = Phase(args.phase) if args.phase else None
        if args.source and args.source not in source_names():
            return _fail(f"unknown source {args.source!r}; valid sources: {', '.join(source_names())}")
        while True:  # every page: the CLI shows everything that matches
            page = operations.list_jobs(
                phase=phase,
                source=args.source,
                labels=args.label or [],
                limit=MAX_PAGE_SIZE,
                next_token=token,
            )
            jobs.extend(page.jobs)
            token = page.next_token
            if token is None:
                break
    except RegistrationError as exc:
        return _fail(str(exc))
    if args.json:
        _print_json([job.to_wire() for job in jobs])
        return 0
    _table([["KEY", "JOB ID", "PHASE", "PROGRESS", "UPDATED", "LABELS"], *(_job_row(job) for job in jobs)])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    job = _operations().show(args.key)
    if job is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    if args.json:
        _print_json(job.to_wire())
        return 0
    spec = job.spec
    print(f"key:       {job.key}")
    print(f"source:    {spec.source}")
    print(f"job id:    {spec.job_id}")
    print(f"endpoint:  {spec.endpoint}" + (f"  ({spec.scope.strip('/')})" if spec.scope.strip("/") else ""))
    if spec.labels:
        print("labels:    " + ",".join(f"{k}={v}" for k, v in sorted(spec.labels.items())))
    print(f"tracked:   {job.created_at} (updated {job.updated_at}, version {job.version})")
    print(_snapshot_text(job.snapshot) if job.snapshot else "phase:     (not polled yet)")
    for transition in job.recent_transitions or []:
        print(f"  {transition.occurred_at}  {transition.event:<10} {transition.transition_id}")
    return 0


def cmd_untrack(args: argparse.Namespace) -> int:
    if not _operations().untrack(args.key):
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"untracked {args.key}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    sent = _operations().send_test(args.key)
    if sent is None:
        return _fail(f"no tracked job {args.key!r}", EXIT_NOT_FOUND)
    print(f"test notification published: {sent.transition_id} (SNS message {sent.message_id})")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from jobwatch.app.models import WatchRegistration
    from jobwatch.app.registration import parse_model, parse_pairs

    try:
        fields = {
            "kind": args.kind,
            "endpoint": args.endpoint,
            "cluster_id": args.cluster_id,
            "backend": args.backend,
            "db_name": args.db_name,
            "secret_name": args.secret,
            "labels": parse_pairs(args.label, "label"),
            "notify": _notify_fields(args),
        }
        watch, created = _operations().add_watch(parse_model(WatchRegistration, fields))
    except RegistrationError as exc:
        return _fail(f"watch refused, nothing written: {exc}")
    print(f"{'watching' if created else 'already watching'} {watch.id} ({watch.kind} {watch.endpoint})")
    return 0


def cmd_unwatch(args: argparse.Namespace) -> int:
    if not _operations().remove_watch(args.id):
        return _fail(f"no watch {args.id!r}", EXIT_NOT_FOUND)
    print(f"unwatched {args.id} (jobs it discovered stay tracked)")
    return 0


def cmd_watches(args: argparse.Namespace) -> int:
    watches = _operations().list_watches().watches
    if args.json:
        _print_json([watch.to_wire() for watch in watches])
        return 0
    rows = [["ID", "KIND", "ENDPOINT", "SCOPE", "PRIMED", "LABELS"]]
    for watch in watches:
        scope = watch.cluster_id or watch.backend or watch.db_name or ""
        labels = ",".join(f"{k}={v}" for k, v in sorted(watch.labels.items()))
        rows.append([watch.id, watch.kind, watch.endpoint, scope, watch.primed_at or "(not yet)", labels])
    _table(rows)
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    from jobwatch_tools.local import discover_once

    report = discover_once()
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return 0
    print(
        f"discover: watches={report.watches} listed={report.listed} tracked={report.tracked} "
        f"recorded_ended={report.recorded_ended} known={report.known}"
    )
    for error in report.errors:
        print(f"  watch error {error['watchId']}: {error['error']}")
    return 0


def cmd_api_serve(args: argparse.Namespace) -> int:
    from jobwatch_tools.api_server import serve

    return serve(args.port)


def _poll_once(as_json: bool) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import poll_once

    report = poll_once().as_dict()
    metrics.clear_metrics()  # the Lambda flushes them as EMF; a local run only reports them
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        skip = ("events", "errors", "duration_s")
        counts = ", ".join(f"{k}={v}" for k, v in report.items() if k not in skip and v)
        print(f"poll: {counts or 'nothing to poll'} in {report['duration_s']}s")
        for event in report["events"]:
            print(f"  {event['event']:<10} {event['jobKey']}  ({event['transitionId']})")
        for error in report["errors"]:
            print(f"  poll error {error['jobId']}: {error['error']}")
    return report


def _deliver_once(as_json: bool) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch_tools.local import drain_email_queue, drain_slack_queue

    report = drain_slack_queue()
    emails = drain_email_queue()
    metrics.clear_metrics()
    summary = {
        "delivered": report.delivered,
        "duplicates": report.duplicates,
        "retried": report.retried,
        "deferred": report.deferred,
        "deadLettered": report.dead_lettered,
        "emailed": emails.delivered if emails else 0,
    }
    print(
        json.dumps(summary, sort_keys=True)
        if as_json
        else "deliver: " + ", ".join(f"{k}={v}" for k, v in summary.items())
    )
    return summary


def cmd_poll(args: argparse.Namespace) -> int:
    _poll_once(args.json)
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    try:
        _deliver_once(args.json)
    except (RuntimeError, SettingsError) as exc:
        return _fail(str(exc))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cycle = 0
    try:
        while args.cycles is None or cycle < args.cycles:
            started = time.monotonic()
            _poll_once(args.json)
            _deliver_once(args.json)
            cycle += 1
            if args.cycles is not None and cycle >= args.cycles:
                break
            time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_local_stack(args: argparse.Namespace) -> int:
    from jobwatch_tools.local_stack import create_local_stack, render_exports

    env = create_local_stack(
        Path(args.template), slack_webhook=args.slack_webhook, allow_real_aws=args.allow_real_aws
    )
    print(render_exports(env).rstrip("\n"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jobwatch.domain.model import Phase

    parser = argparse.ArgumentParser(
        prog="jobwatch", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "local-stack", help="create the template's table, topic, queues and secrets (moto or AWS)"
    )
    p.add_argument("--template", default="template.yaml")
    p.add_argument("--slack-webhook", help="value stored in the Slack webhook secret")
    p.add_argument(
        "--allow-real-aws",
        action="store_true",
        help="create the resources in real AWS too (normally `sam deploy` does that)",
    )
    p.set_defaults(func=cmd_local_stack)

    p = sub.add_parser("check", help="poll one job once without tracking it")
    _add_job_arguments(p)
    p.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("track", help="start tracking a job (same as POST /jobs)")
    _add_job_arguments(p)
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("list", help="tracked jobs and their phase (same as GET /jobs)")
    p.add_argument("--phase", choices=[phase.value for phase in Phase])
    p.add_argument("--source", help="only jobs of this source")
    p.add_argument("--label", action="append", metavar="K=V", help="only jobs with this label (repeatable)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one job with its recent transitions (same as GET /jobs/KEY)")
    p.add_argument("key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("untrack", help="stop tracking a job (same as DELETE /jobs/KEY)")
    p.add_argument("key")
    p.set_defaults(func=cmd_untrack)

    p = sub.add_parser("test", help="send a test notification for a job (same as POST /jobs/KEY/test)")
    p.add_argument("key")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("watch", help="auto-discover a cluster's or backend's jobs (same as POST /watches)")
    p.add_argument("kind", choices=WATCH_KINDS)
    p.add_argument("--endpoint", required=True, help="API base URL (https; http only for loopback)")
    p.add_argument("--cluster-id", help="Zilliz Cloud cluster id (zilliz-cloud-v1/v2)")
    p.add_argument("--backend", help="Weaviate backup backend (weaviate-backups)")
    p.add_argument("--db-name", help="Milvus database (milvus)")
    _add_registration_arguments(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("unwatch", help="remove a watch (same as DELETE /watches/ID)")
    p.add_argument("id")
    p.set_defaults(func=cmd_unwatch)

    p = sub.add_parser("watches", help="list watches (same as GET /watches)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_watches)

    p = sub.add_parser("discover", help="list every watch once and track new jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("api", help="the registration API")
    api_sub = p.add_subparsers(dest="api_command", required=True)
    p = api_sub.add_parser("serve", help="serve the API handler over HTTP on 127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_api_serve)

    p = sub.add_parser("poll", help="run one poll cycle (the poller function's code path)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("deliver", help="drain the Slack and e-mail queues once (the senders' code paths)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deliver)

    p = sub.add_parser("run", help="poll and deliver in a loop")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--cycles", type=int, help="stop after this many cycles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from jobwatch.observability import logger

    logger.setLevel("INFO" if args.verbose else os.environ.get("JOBWATCH_CLI_LOG_LEVEL", "WARNING"))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
