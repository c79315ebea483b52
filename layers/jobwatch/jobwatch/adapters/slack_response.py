"""Updating the Slack message a button was clicked on, through the interaction's `response_url`.

Slack's documented way to change the source message of a `block_actions` interaction is a POST of
the new message to `response_url` with `replace_original: true` (up to 5 times within 30 minutes);
the acknowledgment itself (HTTP 200 within 3 s) carries no message. It needs no bot token, so the
interactivity function reads no destination secret. The URL comes from a verified payload, and is
followed only under the configured prefix (`https://hooks.slack.com/`), within
`slack_response_timeout_s` and without the SDK's retries: the whole answer must fit in Slack's 3 s.
A failed update is logged and reported (`messageUpdated: false`); the action stands.

`slack_sdk`'s `WebhookClient` (incoming webhooks and response URLs) is imported on first use.
"""

from __future__ import annotations

import http.client
from typing import Any, cast

from jobwatch.domain.slack_interaction import Outcome
from jobwatch.observability import logger
from jobwatch.render.slack_actions import acted_message


class SlackResponseUrl:
    """`ports.InteractionResponder`: replaces the root message through `response_url`."""

    def __init__(self, prefix: str, timeout_s: float) -> None:
        self._prefix = prefix
        self._timeout_s = timeout_s

    def respond(self, outcome: Outcome) -> bool:
        url = outcome.interaction.response_url
        fields = {"jobKey": outcome.interaction.job_key, "action": outcome.interaction.action.value}
        if url is None or not url.startswith(self._prefix):
            logger.warning(
                "slack message not updated: no response_url under the allowed prefix", extra=fields
            )
            return False
        try:
            status, body = self._post(url, acted_message(outcome))
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("slack message not updated", extra={**fields, "error": type(exc).__name__})
            return False
        if status != 200:
            logger.warning(
                "slack message not updated", extra={**fields, "status": status, "body": body[:200]}
            )
            return False
        return True

    def _post(self, url: str, message: dict[str, Any]) -> tuple[int, str]:
        from slack_sdk.webhook import WebhookClient

        # Typed int, but handed to urllib, which takes float seconds.
        client = WebhookClient(url, timeout=cast(int, self._timeout_s), retry_handlers=[])
        response = client.send_dict(message)
        return int(response.status_code), str(response.body or "")
