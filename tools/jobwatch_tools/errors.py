"""Operator mistakes as one clear line: what is wrong and what to do, never a traceback.

Every `jobwatch` command runs inside `explain()`; the mistakes a newcomer or an operator makes
(no region, no credentials, nothing listening at AWS_ENDPOINT_URL, a table, queue or topic that does
not exist, a setting that is missing) become a sentence naming the thing and the fix. Anything else
is an internal error: one line too, and the traceback only with `-v`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from jobwatch.settings import SettingsError

CREATE_STACK = (
    "create a local stack with `jobwatch local-stack` (or start everything with `jobwatch sandbox`), "
    "or point JOBWATCH_* at a deployed stack's outputs"
)


SETTINGS_HINT = 'set it, or run `eval "$(jobwatch local-stack)"` against a local stack, or `jobwatch sandbox`'


class OperatorError(Exception):
    """A mistake the operator can fix; `str()` is the one line to print."""


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def _missing_resource(error: ClientError) -> str | None:
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = str(error.response.get("Error", {}).get("Message", ""))
    operation = getattr(error, "operation_name", "")
    if code == "ResourceNotFoundException" and operation in _DYNAMODB_OPERATIONS:
        table = os.environ.get("JOBWATCH_TABLE", "?")
        return f"DynamoDB table {table!r} does not exist at {_endpoint()}: {CREATE_STACK}"
    if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
        return f"an SQS queue of the stack does not exist at {_endpoint()} ({message}): {CREATE_STACK}"
    if code == "NotFound" and "Topic" in message:
        return f"an SNS topic of the stack does not exist at {_endpoint()} ({message}): {CREATE_STACK}"
    if code == "ResourceNotFoundException" and operation in ("GetSecretValue", "DescribeSecret"):
        return f"a secret does not exist at {_endpoint()} ({message})"
    return None


_DYNAMODB_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable", "BatchWriteItem"}
)


def describe(error: BaseException) -> str | None:
    """The one line for an operator mistake, or None when the error is not one."""
    if isinstance(error, OperatorError):
        return str(error)
    if isinstance(error, SettingsError):
        return f"{error} ({SETTINGS_HINT})"
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_DEFAULT_REGION (for example `export AWS_DEFAULT_REGION=us-east-1`)"
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values for a local "
            "moto server) or AWS_PROFILE"
        )
    if isinstance(error, EndpointConnectionError):
        return (
            f"nothing answers at {error.kwargs.get('endpoint_url', _endpoint())}: start the local stack "
            "(`jobwatch sandbox`, or `python -m moto.server -p 5000`) or unset AWS_ENDPOINT_URL for real AWS"
        )
    if isinstance(error, ClientError):
        missing = _missing_resource(error)
        if missing is not None:
            return missing
        code = error.response.get("Error", {}).get("Code", "ClientError")
        message = error.response.get("Error", {}).get("Message", "")
        return f"AWS refused {getattr(error, 'operation_name', 'the call')}: {code}: {message}"
    return None


def explain(run: Callable[[], int], *, verbose: bool, say: Callable[[str], None]) -> int:
    """Run a command; an operator mistake prints one line and exits 2, anything else exits 1."""
    try:
        return run()
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        line = describe(error)
        if line is not None:
            say(f"jobwatch: {line}")
            return 2
        if verbose:
            raise
        say(f"jobwatch: internal error: {type(error).__name__}: {error} (run with -v for the traceback)")
        return 1
