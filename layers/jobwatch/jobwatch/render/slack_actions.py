"""The buttons of a job's Slack root message, and the root as it reads after someone used one (pure).

The root (`channels.slack_app.render_root`) ends with an `actions` block: Snooze 4 h, Mute, and
Untrack (with Slack's confirmation dialog); each button's `value` is the job key. When one is used,
the interactivity endpoint replaces the message through the interaction's `response_url`
(`replace_original`): the message as Slack showed it, with a context line saying who did what and
when, and the buttons again, except after Untrack, when there is nothing left to act on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jobwatch.domain.slack_interaction import ACTED_BLOCK_ID, ACTIONS_BLOCK_ID, Outcome, SlackAction
from jobwatch.render.slack_blocks import MAX_BLOCKS, fit

_LABELS = {SlackAction.SNOOZE: "Snooze 4 h", SlackAction.MUTE: "Mute", SlackAction.UNTRACK: "Untrack"}
_OURS = frozenset({ACTIONS_BLOCK_ID, ACTED_BLOCK_ID})
_FALLBACK_CHARS = 1_000
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
"""The end of an `&amp;`-style entity the cut may have split (Slack's text is already escaped)."""


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _button(action: SlackAction, job_key: str) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action.action_id,
        "text": _plain(_LABELS[action]),
        "value": job_key,
    }
    if action is SlackAction.UNTRACK:
        button["style"] = "danger"
        button["confirm"] = {
            "title": _plain("Stop tracking this job?"),
            "text": _plain("jobwatch stops polling it and posts nothing more about it."),
            "confirm": _plain("Untrack"),
            "deny": _plain("Keep"),
        }
    return button


def actions_block(job_key: str) -> dict[str, Any]:
    """Snooze 4 h, Mute, Untrack for one job."""
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK_ID,
        "elements": [_button(action, job_key) for action in SlackAction],
    }


def acted_line(outcome: Outcome) -> str:
    """`🔕 Muted by <@U…> at …`: a mention of the Slack user id (checked by the parser), nothing else."""
    who = f"<@{outcome.interaction.user.id}>"
    at = fit(outcome.at_iso, 64)
    action = outcome.interaction.action
    if action is SlackAction.SNOOZE:
        until = fit(outcome.snoozed_until or "?", 64)
        return f"💤 Snoozed by {who} at {at}: only FAILED, LOST and AUTH_FAILED until {until}"
    if action is SlackAction.MUTE:
        return f"🔕 Muted by {who} at {at}: nothing more is posted until it is unmuted"
    return f"⏹️ Untracked by {who} at {at}: jobwatch no longer polls this job"


def _kept_blocks(message: Mapping[str, Any] | None) -> list[Any]:
    """The message's own blocks, without the buttons and an earlier acted line (they are redone)."""
    blocks = message.get("blocks") if message is not None else None
    if not isinstance(blocks, Sequence) or isinstance(blocks, str):
        return []
    return [b for b in blocks if isinstance(b, Mapping) and b.get("block_id") not in _OURS]


def acted_message(outcome: Outcome) -> dict[str, Any]:
    """The `response_url` body that replaces the root: its blocks, who acted, and the buttons unless
    the job was untracked."""
    interaction = outcome.interaction
    line = acted_line(outcome)
    acted = {"type": "context", "block_id": ACTED_BLOCK_ID, "elements": [{"type": "mrkdwn", "text": line}]}
    tail = [acted]
    if interaction.action is not SlackAction.UNTRACK:
        tail.append(actions_block(interaction.job_key))
    blocks = [*_kept_blocks(interaction.message)[: MAX_BLOCKS - len(tail)], *tail]
    text = interaction.message.get("text") if interaction.message is not None else None
    fallback = f"{line} · {text}" if isinstance(text, str) and text else line
    return {
        "replace_original": True,
        "text": _PARTIAL_ENTITY.sub("", fallback[:_FALLBACK_CHARS]),
        "blocks": blocks,
    }
