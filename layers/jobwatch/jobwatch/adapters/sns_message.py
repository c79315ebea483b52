"""The SNS publish request of a transition: e-mail text for people, the JSON event for machines,
attributes to filter on, all within SNS's 256 KiB (details shrink first, then long texts).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jobwatch.domain.model import Transition
from jobwatch.domain.severity import severity_for
from jobwatch.domain.text import clean_text
from jobwatch.render.email import MAX_EMAIL_ERROR_CHARS, MAX_NOTE_CHARS, email_body, email_subject
from jobwatch.render.view import EMOJI_BY_SEVERITY, cap_block

SNS_MAX_MESSAGE_BYTES = 262_144
"""SNS limit for one publish: message, subject and attributes together, in UTF-8 bytes."""


_SNS_SAFETY_BYTES = 2_048
"""Headroom for envelope bytes we do not model exactly (attribute type names, request framing)."""


MAX_SNS_ATTRIBUTES = 10
"""SQS (raw delivery) accepts at most 10 message attributes; we publish at most five."""


def _attribute_text(value: str) -> str:
    """SNS refuses attribute values with control characters or lone surrogates."""
    return clean_text(value, 1_000)


def sns_message_attributes(t: Transition) -> dict[str, dict[str, str]]:
    """Attributes subscribers filter on (boto3 `MessageAttributes` shape); empty values are left out."""
    values = {
        "event": str(t.event),
        "phase": t.current.phase.value,
        "source": t.source,
        "severity": t.severity if t.severity in EMOJI_BY_SEVERITY else severity_for(t.event),
    }
    attributes: dict[str, dict[str, str]] = {}
    for name, raw in values.items():
        text = _attribute_text(raw)
        if text:
            attributes[name] = {"DataType": "String", "StringValue": text}
    labels = sorted(
        f"{_attribute_text(k)}={_attribute_text(v)}" for k, v in t.job.labels.items() if _attribute_text(k)
    )
    if labels:
        attributes["labels"] = {"DataType": "String.Array", "StringValue": _json(labels)}
    return attributes


def _json(value: Any) -> str:
    """Compact JSON that is always valid UTF-8 (a lone surrogate from upstream becomes `?`)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _snapshots(event: dict[str, Any], *names: str) -> list[dict[str, Any]]:
    return [event[name] for name in names if isinstance(event.get(name), dict)]


def _drop_detail_lists(snapshot: dict[str, Any]) -> None:
    details = snapshot.get("details")
    if not isinstance(details, dict):
        return
    lists = [key for key, value in details.items() if isinstance(value, list | dict)]
    for key in lists:
        del details[key]
    if lists:
        details["detailsTruncated"] = True


def _keep_scalar_details(snapshot: dict[str, Any]) -> None:
    details = snapshot.get("details")
    if not isinstance(details, dict) or not details:
        return
    kept = {
        key: value
        for key, value in details.items()
        if value is None
        or isinstance(value, bool | int | float)
        or (isinstance(value, str) and len(value) <= 256)
    }
    kept["detailsTruncated"] = True
    snapshot["details"] = kept


def _cap_errors(snapshot: dict[str, Any]) -> None:
    error = snapshot.get("error")
    if isinstance(error, str) and len(error) > MAX_EMAIL_ERROR_CHARS:
        snapshot["error"] = cap_block(error, MAX_EMAIL_ERROR_CHARS)


def _cap_texts(event: dict[str, Any]) -> None:
    """Cut both errors and the note (which quotes the last poll error) to the e-mail's cap."""
    for snapshot in _snapshots(event, "previous", "current"):
        _cap_errors(snapshot)
    note = event.get("note")
    if isinstance(note, str) and len(note) > MAX_NOTE_CHARS:
        event["note"] = cap_block(note, MAX_NOTE_CHARS)


def _on(name: str, step: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`step` applied to one snapshot of the event, when that snapshot is there."""

    def apply(event: dict[str, Any]) -> None:
        for snapshot in _snapshots(event, name):
            step(snapshot)

    return apply


_SHRINK_STEPS: tuple[Callable[[dict[str, Any]], None], ...] = (
    _on("previous", _drop_detail_lists),
    _on("current", _drop_detail_lists),
    _on("previous", _keep_scalar_details),
    _on("current", _keep_scalar_details),
    _cap_texts,
)


def _shrunk(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ever smaller copies of the wire event: the least useful bytes go first."""
    event = copy.deepcopy(event)
    for step in _SHRINK_STEPS:
        step(event)
        yield event


def _request_size(subject: str, message: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = _utf8_len(subject) + _utf8_len(message)
    for name, attribute in attributes.items():
        size += _utf8_len(name) + sum(_utf8_len(v) for v in attribute.values())
    return size


def email_publish_request(t: Transition) -> dict[str, Any]:
    """Keyword arguments for publishing one transition's e-mail to the alert e-mail topic.

    The same attributes as on the transitions topic, so addresses subscribed there can filter by
    event, source, severity or label.
    """
    return {
        "Subject": email_subject(t),
        "Message": email_body(t),
        "MessageAttributes": sns_message_attributes(t),
    }


def sns_publish_request(t: Transition) -> dict[str, Any]:
    """Keyword arguments for `sns.publish` (minus TopicArn): email text for people, JSON for machines.

    If the event would push the request over SNS's 256 KiB, snapshot details are shrunk step by step
    (marked `detailsTruncated: true`), then errors and `note` are cut, rather than failing the publish.
    """
    subject = email_subject(t)
    body = email_body(t)
    attributes = sns_message_attributes(t)
    budget = SNS_MAX_MESSAGE_BYTES - _SNS_SAFETY_BYTES
    wire = t.to_wire()
    for event in itertools.chain([wire], _shrunk(wire)):
        event_json = _json(event)
        message = _json(
            {
                "default": body,
                "email": body,
                "sqs": event_json,
                "lambda": event_json,
                "https": event_json,
                "http": event_json,
            }
        )
        if _request_size(subject, message, attributes) <= budget:
            return {
                "Subject": subject,
                "Message": message,
                "MessageStructure": "json",
                "MessageAttributes": attributes,
            }
    raise ValueError(f"transition {t.transition_id!r} does not fit in one SNS message even after truncation")
