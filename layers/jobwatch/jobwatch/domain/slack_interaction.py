"""A button click on a job's Slack root message, read from Slack's interaction request (pure).

Slack POSTs `application/x-www-form-urlencoded` with one field, `payload`: JSON with `type:
block_actions`, the `user` who clicked, the `channel`, the `container` (the message's `ts`), the
`message` as Slack shows it, `actions[]` (each with the `action_id` and `value` of the button) and a
`response_url` for follow-ups. Only bodies whose signature was verified are parsed here
(`domain.slack_signature`); even so, nothing in them is trusted beyond its shape: the job key must
look like one, the action must be one of ours, and the user's name is cut to plain characters
before it is recorded or shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs

MAX_BODY_BYTES = 64 * 1024
"""A block_actions payload carries the message it came from: a few KiB; anything past this is refused."""
MAX_FORM_FIELDS = 20
SNOOZE_S = 4 * 3600.0
"""What the Snooze button sets: 4 hours from the click (`jobwatch snooze --for` for other lengths)."""
ACTIONS_BLOCK_ID = "jobwatch_actions"
"""The block of the root message that carries the buttons."""
ACTED_BLOCK_ID = "jobwatch_acted"
"""The context block that says who last acted on the job from Slack."""

_JOB_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\.[0-9a-f]{20}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_SLACK_ID = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,40}")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_CHARS = 80
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


class SlackAction(StrEnum):
    SNOOZE = "snooze"
    MUTE = "mute"
    UNTRACK = "untrack"

    @property
    def action_id(self) -> str:
        """The button's `action_id`: what Slack sends back when it is clicked."""
        return f"jobwatch_{self.value}"


_BY_ACTION_ID = {action.action_id: action for action in SlackAction}


class BadInteraction(ValueError):
    """Not an interaction jobwatch acts on; the message says why in a few words."""


class UnknownAction(BadInteraction):
    """A well-formed click on something that is not one of jobwatch's buttons."""


@dataclass(frozen=True, slots=True)
class SlackUser:
    id: str
    name: str
    """Slack's `username` (or `name`), reduced to `[A-Za-z0-9._-]`; may be empty."""


@dataclass(frozen=True, slots=True)
class Interaction:
    """One click: what to do to which job, who asked, and where the message lives."""

    action: SlackAction
    job_key: str
    user: SlackUser
    team_id: str | None
    channel_id: str | None
    message_ts: str | None
    response_url: str | None
    message: Mapping[str, Any] | None
    """The message as Slack showed it (`text`, `blocks`): the base of its replacement."""

    @property
    def actor(self) -> str:
        """Who did it, as recorded in the job's quiet state and the log: `slack:<name> (<id>)`."""
        if self.user.name:
            return f"slack:{self.user.name} ({self.user.id})"
        return f"slack:{self.user.id}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an interaction did, for the message update and the answer."""

    interaction: Interaction
    at_iso: str
    snoozed_until: str | None = None


def _form_payload(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadInteraction("body is not form-encoded") from None
    payload = fields.get("payload")
    if payload is None or len(payload) != 1:
        raise BadInteraction("body needs exactly one payload field")
    return payload[0]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadInteraction("payload is not JSON") from None
    if not isinstance(value, dict):
        raise BadInteraction("payload is not a JSON object")
    return value


def _id_of(value: Any, pattern: re.Pattern[str]) -> str | None:
    """`value["id"]` when `value` is an object whose id has the expected shape."""
    found = value.get("id") if isinstance(value, dict) else None
    return found if isinstance(found, str) and pattern.fullmatch(found) else None


def _user(payload: Mapping[str, Any]) -> SlackUser:
    user = payload.get("user")
    user_id = _id_of(user, _USER_ID)
    if user_id is None or not isinstance(user, dict):
        raise BadInteraction("payload has no Slack user id")
    raw = user.get("username") or user.get("name") or ""
    name = _NAME_UNSAFE.sub("", raw)[:_MAX_NAME_CHARS] if isinstance(raw, str) else ""
    return SlackUser(id=user_id, name=name)


def _action(payload: Mapping[str, Any]) -> tuple[SlackAction, str]:
    actions = payload.get("actions")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        raise BadInteraction("payload needs exactly one action")
    action_id, value = actions[0].get("action_id"), actions[0].get("value")
    action = _BY_ACTION_ID.get(action_id) if isinstance(action_id, str) else None
    if action is None:
        raise UnknownAction("unknown action")
    if not isinstance(value, str) or not _JOB_KEY.fullmatch(value):
        raise BadInteraction("action value is not a job key")
    return action, value


def _message_ts(payload: Mapping[str, Any]) -> str | None:
    container = payload.get("container")
    ts = container.get("message_ts") if isinstance(container, dict) else None
    return ts if isinstance(ts, str) and _TS.fullmatch(ts) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_interaction(body: bytes) -> Interaction:
    """The click in a (verified) interaction body; BadInteraction when it is none jobwatch acts on."""
    payload = _json_object(_form_payload(body))
    if payload.get("type") != "block_actions":
        raise BadInteraction("only block_actions interactions are handled")
    action, job_key = _action(payload)
    message = payload.get("message")
    return Interaction(
        action=action,
        job_key=job_key,
        user=_user(payload),
        team_id=_id_of(payload.get("team"), _SLACK_ID),
        channel_id=_id_of(payload.get("channel"), _SLACK_ID),
        message_ts=_message_ts(payload),
        response_url=_text(payload.get("response_url")),
        message=message if isinstance(message, dict) else None,
    )
