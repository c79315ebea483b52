"""Reading a button click from Slack's interaction body, and the root message's buttons and update."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from jobwatch.domain.slack_interaction import (
    ACTED_BLOCK_ID,
    ACTIONS_BLOCK_ID,
    BadInteraction,
    Outcome,
    SlackAction,
    UnknownAction,
    parse_interaction,
)
from jobwatch.render.slack_actions import acted_message, actions_block
from jobwatch.render.slack_blocks import validate_payload

KEY = "weaviate-export.5e77d5f580f4c542711a"


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0ANA00001", "username": "ana", "name": "ana", "team_id": "T0JOBWATCH"},
        "team": {"id": "T0JOBWATCH", "domain": "example"},
        "channel": {"id": "C0SEARCH01", "name": "search-jobs"},
        "container": {"type": "message", "message_ts": "1787274000.000100", "channel_id": "C0SEARCH01"},
        "message": {
            "ts": "1787274000.000100",
            "text": "▶️ RUNNING · Weaviate export nightly · 12.5%",
            "blocks": [
                {"type": "header", "block_id": "h", "text": {"type": "plain_text", "text": "▶️ RUNNING"}},
                actions_block(KEY),
            ],
        },
        "response_url": "https://hooks.slack.com/actions/T0JOBWATCH/1/abc",
        "actions": [
            {"action_id": "jobwatch_snooze", "block_id": ACTIONS_BLOCK_ID, "value": KEY, "type": "button"}
        ],
    }
    base.update(changes)
    return base


def form(data: Any) -> bytes:
    return urlencode({"payload": json.dumps(data)}).encode()


def test_a_snooze_click_is_read_with_who_and_where() -> None:
    interaction = parse_interaction(form(payload()))
    assert (interaction.action, interaction.job_key) == (SlackAction.SNOOZE, KEY)
    assert (interaction.user.id, interaction.user.name) == ("U0ANA00001", "ana")
    assert (interaction.team_id, interaction.channel_id, interaction.message_ts) == (
        "T0JOBWATCH",
        "C0SEARCH01",
        "1787274000.000100",
    )
    assert interaction.response_url == "https://hooks.slack.com/actions/T0JOBWATCH/1/abc"
    assert interaction.actor == "slack:ana (U0ANA00001)"


@pytest.mark.parametrize("action", list(SlackAction))
def test_each_button_is_one_action(action: SlackAction) -> None:
    click = [{"action_id": action.action_id, "value": KEY, "type": "button"}]
    assert parse_interaction(form(payload(actions=click))).action is action


def test_the_user_name_is_cut_to_plain_characters() -> None:
    user = {"id": "U0ANA00001", "username": "<!channel> ana\u202e&x" + "y" * 200}
    interaction = parse_interaction(form(payload(user=user)))
    assert interaction.user.name == "channelanax" + "y" * 69
    assert len(interaction.user.name) == 80
    nameless = parse_interaction(form(payload(user={"id": "W0ANA00001"})))
    assert nameless.actor == "slack:W0ANA00001"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "exactly one payload"),
        (b"payload=%FF%FE", "not form-encoded"),  # not UTF-8 once decoded
        (b"\xff\xfe", "not form-encoded"),
        (b"payload=a&&b", "not form-encoded"),  # strict: an empty field
        (b"payload", "not form-encoded"),
        ("&".join(f"f{i}=1" for i in range(30)).encode(), "not form-encoded"),
        (b"other=1", "exactly one payload"),
        (form(payload()) + b"&" + form(payload()), "exactly one payload"),
        (b"payload=not-json", "not JSON"),
        (b"payload=" + b"%5B" * 100_000, "not JSON"),  # nested past the parser's recursion limit
        (form([1, 2]), "not a JSON object"),
        (form(payload(type="view_submission")), "block_actions"),
        (form(payload(actions=[])), "exactly one action"),
        (form(payload(actions="x")), "exactly one action"),
        (form(payload(actions=[{}, {}])), "exactly one action"),
        (form(payload(actions=[{"action_id": "jobwatch_snooze", "value": "../../etc"}])), "not a job key"),
        (form(payload(actions=[{"action_id": "jobwatch_snooze", "value": KEY + "\n"}])), "not a job key"),
        (form(payload(actions=[{"action_id": "jobwatch_snooze"}])), "not a job key"),
        (form(payload(user={"id": "U0ANA00001\n"})), "no Slack user id"),
        (form(payload(user={"name": "ana"})), "no Slack user id"),
        (form(payload(user="U0ANA00001")), "no Slack user id"),
    ],
)
def test_malformed_interactions_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadInteraction) as refused:
        parse_interaction(body)
    assert reason in str(refused.value)


@pytest.mark.parametrize("action_id", ["jobwatch_delete", "approve", 7, None])
def test_an_unknown_action_is_its_own_refusal(action_id: Any) -> None:
    with pytest.raises(UnknownAction):
        parse_interaction(form(payload(actions=[{"action_id": action_id, "value": KEY}])))


def test_odd_optional_fields_are_dropped_not_trusted() -> None:
    interaction = parse_interaction(
        form(
            payload(
                team={"id": "T0\n"}, channel="C0", container={"message_ts": "x"}, message=[], response_url=5
            )
        )
    )
    assert (interaction.team_id, interaction.channel_id, interaction.message_ts) == (None, None, None)
    assert (interaction.message, interaction.response_url) == (None, None)


# -- the buttons and the updated root ----------------------------------------------------------------------


def test_the_buttons_are_valid_block_kit_carrying_the_job_key() -> None:
    block = actions_block(KEY)
    assert validate_payload({"text": "x", "blocks": [block]}) == []
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in block["elements"]] == [
        ("jobwatch_snooze", KEY, "Snooze 4 h"),
        ("jobwatch_mute", KEY, "Mute"),
        ("jobwatch_untrack", KEY, "Untrack"),
    ]
    untrack = block["elements"][2]
    assert untrack["style"] == "danger" and set(untrack["confirm"]) == {"title", "text", "confirm", "deny"}


def test_validate_payload_checks_action_blocks() -> None:
    bad = {"type": "actions", "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "x" * 80}}]}
    assert validate_payload({"text": "x", "blocks": [bad]}) == [
        "blocks[0].elements[0].text.type: 'mrkdwn' not in ('plain_text',)",
        "blocks[0].elements[0].text.text: 80 chars > 75",
        "blocks[0].elements[0].action_id: missing or longer than 255",
    ]
    assert validate_payload({"text": "x", "blocks": [{"type": "actions", "elements": []}]}) == [
        "blocks[0].elements: missing or empty"
    ]


@pytest.mark.parametrize("action", list(SlackAction))
def test_the_updated_root_says_who_did_what_and_keeps_the_rest(action: SlackAction) -> None:
    click = [{"action_id": action.action_id, "value": KEY}]
    interaction = parse_interaction(form(payload(actions=click)))
    until = "2026-08-21T05:00:12+00:00" if action is SlackAction.SNOOZE else None
    message = acted_message(Outcome(interaction, "2026-08-21T01:00:12.000Z", snoozed_until=until))
    assert validate_payload(message) == []
    assert message["replace_original"] is True
    blocks = message["blocks"]
    assert blocks[0]["block_id"] == "h"  # the root's own blocks stay
    acted = next(b for b in blocks if b.get("block_id") == ACTED_BLOCK_ID)
    line = acted["elements"][0]["text"]
    assert "by <@U0ANA00001> at 2026-08-21T01:00:12.000Z" in line
    assert line in message["text"]
    buttons = [b for b in blocks if b.get("block_id") == ACTIONS_BLOCK_ID]
    if action is SlackAction.UNTRACK:
        assert buttons == [] and "Untracked" in line
    else:
        assert buttons == [actions_block(KEY)] and blocks[-1] == buttons[0]
    if until:
        assert until in line


def test_a_second_action_replaces_the_first_line() -> None:
    first = acted_message(Outcome(parse_interaction(form(payload())), "t1", snoozed_until="u1"))
    shown = payload(message={"text": first["text"], "blocks": first["blocks"]})
    shown["actions"] = [{"action_id": "jobwatch_mute", "value": KEY}]
    second = acted_message(Outcome(parse_interaction(form(shown)), "t2"))
    acted = [b for b in second["blocks"] if b.get("block_id") == ACTED_BLOCK_ID]
    assert len(acted) == 1 and "Muted" in acted[0]["elements"][0]["text"]
    assert len([b for b in second["blocks"] if b.get("block_id") == ACTIONS_BLOCK_ID]) == 1


def test_a_message_slack_did_not_send_still_gets_a_valid_update() -> None:
    interaction = parse_interaction(form(payload(message=None)))
    message = acted_message(Outcome(interaction, "t", snoozed_until="u"))
    assert validate_payload(message) == [] and len(message["blocks"]) == 2
    crowded = payload(message={"text": "&amp;" * 300, "blocks": [{"type": "divider"}] * 60})
    message = acted_message(Outcome(parse_interaction(form(crowded)), "t", snoozed_until="u"))
    assert validate_payload(message) == [] and len(message["blocks"]) == 50
    assert not message["text"].endswith(("&", "&a", "&am", "&amp"))
