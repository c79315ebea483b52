"""The Slack interactivity function: wire once per process, answer one API Gateway proxy event.

The route is public (Slack cannot sign AWS requests); what stands in for IAM is Slack's request
signature, checked by `app.slack_interactions` before anything in the body is read. This module only
turns the proxy event into the request's headers and raw bytes (a body larger than the cap is
refused before it is even decoded) and the answer back into a proxy response, counting each.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from jobwatch.adapters import aws
from jobwatch.adapters.dynamodb.replays import DynamoReplayGuard
from jobwatch.adapters.slack_response import SlackResponseUrl
from jobwatch.app.slack_interactions import Answer, InteractionRequest, SlackInteractions, refused
from jobwatch.domain.slack_interaction import MAX_BODY_BYTES
from jobwatch.entrypoints.wiring import CLOCK, job_store, secret_resolver
from jobwatch.observability import Metric, MetricUnit, logger, metrics
from jobwatch.settings import SlackInteractionSettings

_MAX_ENCODED_CHARS = (MAX_BODY_BYTES + 2) // 3 * 4
"""The longest base64 text whose bytes can still be within the cap."""


def wire(settings: SlackInteractionSettings) -> SlackInteractions:
    return SlackInteractions(
        store=job_store(settings),
        clock=CLOCK,
        secrets=secret_resolver(settings.secret_cache_s),
        signing_secret_name=settings.slack_signing_secret,
        replays=DynamoReplayGuard(aws.dynamodb(), settings.table),
        responder=SlackResponseUrl(settings.slack_response_url_prefix, settings.slack_response_timeout_s),
    )


def cold_start() -> SlackInteractions:
    """Settings and adapters for this process; a missing variable stops here with one line."""
    return wire(SlackInteractionSettings.from_env())


def _headers(event: Mapping[str, Any]) -> dict[str, str] | None:
    """Header names in lower case; None when two spellings of one name disagree."""
    raw = event.get("headers") or {}
    if not isinstance(raw, Mapping):
        return None
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        lower = name.lower()
        if headers.setdefault(lower, value) != value:
            return None
    return headers


def _body(event: Mapping[str, Any]) -> bytes | Answer:
    """The raw body as Slack sent it, or the answer refusing it (too large, not base64)."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        return refused(400, "malformed", "body is not text")
    if event.get("isBase64Encoded") is True:
        if len(body) > _MAX_ENCODED_CHARS:
            return refused(413, "oversized", f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return refused(400, "malformed", "body is not valid base64")
    if len(body) > MAX_BODY_BYTES:
        return refused(413, "oversized", f"body larger than {MAX_BODY_BYTES} bytes")
    return body.encode("utf-8", "surrogatepass")


def _source_ip(event: Mapping[str, Any]) -> str | None:
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    ip = identity.get("sourceIp") if isinstance(identity, Mapping) else None
    return ip if isinstance(ip, str) else None


def _answer(event: Any, interactions: SlackInteractions) -> Answer:
    if not isinstance(event, Mapping):
        return refused(400, "malformed", "not an API Gateway proxy event")
    headers = _headers(event)
    if headers is None:
        return refused(400, "malformed", "headers are not a map of one value each")
    body = _body(event)
    if isinstance(body, Answer):
        return body
    return interactions.handle(InteractionRequest(headers=headers, body=body))


def _count(answer: Answer, event: Any) -> None:
    metrics.add_metric(name=Metric.SLACK_INTERACTIONS, unit=MetricUnit.Count, value=1)
    if answer.refusal is not None:
        metrics.add_metric(name=Metric.SLACK_INTERACTIONS_REFUSED, unit=MetricUnit.Count, value=1)
        source = _source_ip(event) if isinstance(event, Mapping) else None
        logger.warning(
            "slack interaction refused",
            extra={"status": answer.status, "reason": answer.refusal, "sourceIp": source},
        )
        return
    metrics.add_metric(name=Metric.SLACK_INTERACTIONS_APPLIED, unit=MetricUnit.Count, value=1)
    if answer.body.get("messageUpdated") is False:
        metrics.add_metric(name=Metric.SLACK_MESSAGE_UPDATE_FAILURES, unit=MetricUnit.Count, value=1)


def handle(event: Any, context: Any, interactions: SlackInteractions) -> dict[str, Any]:
    """One proxy event: 200 with what was done, or a 4xx (503 without the secret) with a short
    reason; nothing is changed by a request that is not answered 200."""
    answer = _answer(event, interactions)
    _count(answer, event)
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(answer.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
