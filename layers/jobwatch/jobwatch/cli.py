"""The `jobwatch` command: local operation of the same code paths the Lambda functions run.

Logs go to stderr; stdout carries only the command's result, so `eval "$(jobwatch local-stack)"`
and `jobwatch check --json | jq` work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jobwatch.errors import PollError, RegistrationError
from jobwatch.model import Snapshot, TrackedJob
from jobwatch.sources import source_names

EXIT_USAGE = 2


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


def _job_fields(args: argparse.Namespace) -> dict[str, Any]:
    from jobwatch.registration import parse_pairs

    return {
        "source": args.source,
        "endpoint": args.endpoint,
        "job_id": args.job_id,
        "backend": args.backend,
        "cluster_id": args.cluster_id,
        "options": parse_pairs(args.option, "option"),
    }


def _snapshot_text(snapshot: Snapshot) -> str:
    from jobwatch.messages import format_progress

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
    from jobwatch.registration import build_spec
    from jobwatch.service import check_job
    from jobwatch.settings import get_settings

    try:
        spec = build_spec(_job_fields(args), allow_http_loopback=get_settings().allow_http_loopback)
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
    from jobwatch.registration import parse_pairs
    from jobwatch.service import track_job

    try:
        fields = _job_fields(args)
        fields["secret_name"] = args.secret
        fields["labels"] = parse_pairs(args.label, "label")
        job, created = track_job(fields)
    except RegistrationError as exc:
        return _fail(f"registration refused, nothing written: {exc}")
    verb = "tracking" if created else "already tracked"
    print(f"{verb} {job.key} ({job.spec.source} {job.spec.job_id})")
    return 0


def _job_row(job: TrackedJob) -> list[str]:
    from jobwatch.messages import format_progress

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


def cmd_list(args: argparse.Namespace) -> int:
    from jobwatch.service import list_jobs

    jobs = list_jobs()
    if args.json:
        print(json.dumps([{"key": job.key, **job.to_wire()} for job in jobs], indent=2, sort_keys=True))
        return 0
    rows = [["KEY", "JOB ID", "PHASE", "PROGRESS", "UPDATED", "LABELS"], *(_job_row(job) for job in jobs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _poll_once(as_json: bool) -> dict[str, Any]:
    from jobwatch.observability import metrics
    from jobwatch.service import handle_schedule

    report = handle_schedule({}, None).as_dict()
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
    from jobwatch.service import drain_slack_queue

    report = drain_slack_queue()
    metrics.clear_metrics()
    summary = {
        "delivered": report.delivered,
        "duplicates": report.duplicates,
        "retried": report.retried,
        "deadLettered": report.dead_lettered,
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
    except RuntimeError as exc:
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
    from jobwatch.local_stack import create_local_stack, render_exports

    env = create_local_stack(
        Path(args.template), slack_webhook=args.slack_webhook, allow_real_aws=args.allow_real_aws
    )
    print(render_exports(env).rstrip("\n"))
    return 0


def build_parser() -> argparse.ArgumentParser:
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

    p = sub.add_parser("track", help="start tracking a job")
    _add_job_arguments(p)
    p.add_argument("--secret", help="name of the Secrets Manager secret holding the API key")
    p.add_argument("--label", action="append", metavar="K=V")
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("list", help="tracked jobs and their phase")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("poll", help="run one poll cycle (the poller function's code path)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("deliver", help="drain the Slack queue once (the Slack function's code path)")
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
