"""`jobwatch snooze | unsnooze | mute | unmute`: the API's `/jobs/{key}/snooze` and `/mute`, for one
job (a reference) or every job with some labels (`--label k=v`, repeatable)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jobwatch_tools.output import EXIT_NOT_FOUND, EXIT_USAGE, JSON_HELP, print
from jobwatch_tools.output import actor as _actor
from jobwatch_tools.output import all_jobs as _all_jobs
from jobwatch_tools.output import fail as _fail
from jobwatch_tools.output import operations as _operations
from jobwatch_tools.output import print_json as _print_json
from jobwatch_tools.output import resolve_key as _resolve_key

if TYPE_CHECKING:
    from jobwatch.app.models import JobResource
    from jobwatch.app.operations import Operations

Change = Callable[["Operations", str, str], "JobResource | None"]


def _targets(operations: Operations, args: argparse.Namespace) -> list[str] | None:
    """The keys the command acts on; None after printing why there are none."""
    from jobwatch.domain.errors import RegistrationError
    from jobwatch_tools.references import ReferenceProblem

    if (args.key is None) == (not args.label):
        _fail("name one job, or select jobs with --label k=v (not both)")
        return None
    if args.key is not None:
        try:
            return [_resolve_key(operations, args.key)]
        except ReferenceProblem as exc:
            _fail(str(exc))
            return None
    try:
        keys = [job.key for job in _all_jobs(operations, labels=args.label)]
    except RegistrationError as exc:
        _fail(str(exc))
        return None
    if not keys:
        _fail("no tracked job has " + " and ".join(args.label), EXIT_NOT_FOUND)
        return None
    return keys


def _run(args: argparse.Namespace, change: Change, done: str) -> int:
    from jobwatch.app.operations import QuietConflict

    operations = _operations()
    keys = _targets(operations, args)
    if keys is None:
        return EXIT_NOT_FOUND if args.label else EXIT_USAGE
    changed: list[JobResource] = []
    for key in keys:
        try:
            job = change(operations, key, _actor())
        except QuietConflict as exc:
            _fail(str(exc), EXIT_NOT_FOUND)
            continue
        if job is not None:  # untracked meanwhile: nothing to say about it
            changed.append(job)
    if args.json:
        _print_json([job.to_wire() for job in changed])
    else:
        for job in changed:
            print(f"{done} {job.key}" + _quiet_text(job))
    return 0 if len(changed) == len(keys) else EXIT_NOT_FOUND


def _quiet_text(job: JobResource) -> str:
    if job.quiet.muted:
        return "  (muted: nothing is published)"
    if job.quiet.snoozed_until:
        return f"  (only FAILED, LOST, AUTH_FAILED until {job.quiet.snoozed_until})"
    return ""


def quiet_line(job: JobResource) -> str | None:
    """`jobwatch show`'s line about snooze and mute; None when neither was ever set."""
    quiet = job.quiet
    parts = []
    if quiet.muted:
        parts.append(f"muted by {quiet.muted_by or 'unknown'}")
    if quiet.snoozed_until:
        parts.append(f"snoozed until {quiet.snoozed_until} by {quiet.snoozed_by or 'unknown'}")
    if job.suppressed:
        parts.append(f"{job.suppressed} suppressed (last: {job.last_suppressed})")
    return "quiet:     " + "; ".join(parts) if parts else None


def cmd_snooze(args: argparse.Namespace) -> int:
    from jobwatch.domain.quiet import BadDuration, parse_duration

    try:
        seconds = parse_duration(args.duration)
    except BadDuration as exc:
        return _fail(str(exc))
    return _run(args, lambda ops, key, who: ops.snooze(key, seconds, who), "snoozed")


def cmd_unsnooze(args: argparse.Namespace) -> int:
    return _run(args, lambda ops, key, who: ops.unsnooze(key, who), "unsnoozed")


def cmd_mute(args: argparse.Namespace) -> int:
    return _run(args, lambda ops, key, who: ops.mute(key, who), "muted")


def cmd_unmute(args: argparse.Namespace) -> int:
    return _run(args, lambda ops, key, who: ops.unmute(key, who), "unmuted")


def add_quiet_parsers(sub: Any) -> None:
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("snooze", "publish only FAILED, LOST, AUTH_FAILED for a while (PUT /jobs/KEY/snooze)", cmd_snooze),
        ("unsnooze", "end a snooze (DELETE /jobs/KEY/snooze)", cmd_unsnooze),
        ("mute", "publish nothing for a job until unmuted (PUT /jobs/KEY/mute)", cmd_mute),
        ("unmute", "end a mute (DELETE /jobs/KEY/mute)", cmd_unmute),
    ]
    for name, what, command in commands:
        p = sub.add_parser(name, help=what)
        p.add_argument("key", metavar="JOB", nargs="?", help="a job (key, job id or unique key prefix)")
        p.add_argument("--label", action="append", metavar="K=V", help="every job with this label (repeats)")
        if name == "snooze":
            p.add_argument("--for", dest="duration", required=True, metavar="TIME", help="4h, 90m, 1d12h ...")
        p.add_argument("--json", action="store_true", help=JSON_HELP)
        p.set_defaults(func=command)
