"""Reading a transition back from what SQS hands a sender: the SNS envelope or the raw event."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from jobwatch.domain.model import SCHEMA_ID, Transition
from jobwatch.domain.text import clean_text


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _transition_from_object(data: Any) -> Transition:
    if not isinstance(data, dict):
        raise ValueError(
            f"not a jobwatch transition event: expected a JSON object, got {type(data).__name__}"
        )
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith("jobwatch.transition/"):
        raise ValueError(f"not a jobwatch transition event: schema is {schema!r}, expected {SCHEMA_ID!r}")
    if schema != SCHEMA_ID:
        raise ValueError(f"unsupported event schema {schema!r}: this consumer reads {SCHEMA_ID!r}")
    try:
        return Transition.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid {SCHEMA_ID} event: {_validation_summary(exc)}") from exc


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        excerpt = clean_text(text, 80)
        raise ValueError(f"{what} is not JSON ({exc}): {excerpt!r}") from exc


def parse_event(text: str) -> Transition:
    """The published JSON event (as delivered to sqs/lambda/https subscribers) back into a Transition."""
    return _transition_from_object(_loads(text, "event"))


def transition_from_sqs_body(body: str) -> Transition:
    """An SQS message body: either the SNS notification envelope or (raw delivery) the event itself."""
    data = _loads(body, "SQS body")
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        message = data["Message"]
        if not isinstance(message, str):
            raise ValueError("SNS notification 'Message' is not a string")
        try:
            return parse_event(message)
        except ValueError as exc:
            message_id = clean_text(data.get("MessageId", "?"), 80)
            raise ValueError(f"SNS notification {message_id}: {exc}") from exc
    if isinstance(data, dict) and "schema" in data:
        return _transition_from_object(data)
    if isinstance(data, dict):
        keys = ", ".join(sorted(str(k) for k in data)[:8])
        raise ValueError(f"SQS body is neither an SNS notification nor a transition event (keys: {keys})")
    raise ValueError(
        f"SQS body is neither an SNS notification nor a transition event ({type(data).__name__})"
    )
