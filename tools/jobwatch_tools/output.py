"""What every `jobwatch` command shares: how it prints (untrusted text escaped), fails (one line on
stderr, an exit code), prints JSON and tables, and reaches the operations and the audit actor."""

from __future__ import annotations

import builtins
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from jobwatch.domain.text import terminal_safe

if TYPE_CHECKING:
    from jobwatch.app.models import JobResource
    from jobwatch.app.operations import Operations

EXIT_USAGE = 2
EXIT_NOT_FOUND = 1
JSON_HELP = "print JSON (the API's wire format) instead of text"


def print(*values: object, file: TextIO | None = None) -> None:  # every line the CLI prints
    """Stored and upstream text is untrusted: a job id or an upstream error may carry ANSI escapes or a
    right-to-left override. Every value is shown with such characters as visible escapes."""
    builtins.print(*(terminal_safe(value, keep_newlines=True) for value in values), file=file)


def fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"jobwatch: {message}", file=sys.stderr)
    return code


def operations() -> Operations:
    from jobwatch_tools.local import operations as local_operations

    return local_operations()


def actor() -> str:
    """Who runs the command, for the audit lines of registrations and removals."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def all_jobs(operations: Operations, **filters: Any) -> list[JobResource]:
    """Every page of `list_jobs`: the CLI shows (and resolves references against) everything."""
    from jobwatch.app.operations import MAX_PAGE_SIZE

    jobs: list[JobResource] = []
    token: str | None = None
    while True:
        page = operations.list_jobs(limit=MAX_PAGE_SIZE, next_token=token, **filters)
        jobs.extend(page.jobs)
        token = page.next_token
        if token is None:
            return jobs


def resolve_key(operations: Operations, ref: str) -> str:
    """The key a job reference names (full key, job id or unique key prefix); ReferenceProblem if
    none or several. A full key is looked up directly, without listing every job."""
    from jobwatch_tools.references import resolve_reference

    if operations.store.get_job(ref) is not None:
        return ref
    return resolve_reference(ref, ((job.key, job.spec.job_id) for job in all_jobs(operations)))
