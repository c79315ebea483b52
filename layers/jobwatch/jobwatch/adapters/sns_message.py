"""The SNS publish request of a transition: e-mail text for people, the JSON event for machines,
attributes to filter on, all within SNS's 256 KiB (details shrink first, then long texts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobwatch.domain.model import Transition
from jobwatch.domain.severity import severity_for
from jobwatch.domain.text import clean_text
from jobwatch.render.email import email_body, email_subject
from jobwatch.render.event_json import event_json, shrinking, utf8_len
from jobwatch.render.view import EMOJI_BY_SEVERITY

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
        attributes["labels"] = {"DataType": "String.Array", "StringValue": event_json(labels)}
    return attributes


def _request_size(subject: str, message: str, attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = utf8_len(subject) + utf8_len(message)
    for name, attribute in attributes.items():
        size += utf8_len(name) + sum(utf8_len(v) for v in attribute.values())
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
    for event in shrinking(wire):
        serialized = event_json(event)
        message = event_json(
            {
                "default": body,
                "email": body,
                "sqs": serialized,
                "lambda": serialized,
                "https": serialized,
                "http": serialized,
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
