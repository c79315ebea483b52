"""Acting from Slack: a click on a job's Snooze 4 h, Mute or Untrack button, verified, then applied.

The order is the point (docs/decisions.md, D46):
1. the body's size (at most `MAX_BODY_BYTES`) and the presence of Slack's two signature headers;
2. the signature, with the signing secret read by name from Secrets Manager: `v0` HMAC-SHA256 of
   `v0:<timestamp>:<raw body>`, a timestamp within 5 minutes, compared in constant time
   (`domain.slack_signature`). Nothing of the body is parsed before this passes;
3. the interaction (`domain.slack_interaction`): form encoding, JSON, one of our buttons, a job key;
4. the job must exist;
5. the signature is remembered until the request would be stale anyway (`ReplayGuard`, a
   conditional put): the same signed request a second time is refused;
6. the action, through the same read-change-write as `jobwatch snooze` / `mute` / `untrack`, with
   the Slack user recorded as the actor (`slack:<name> (<id>)`) in the job's quiet state and the log;
7. the message is updated to say who did what (`InteractionResponder`: Slack's `response_url`).
A request refused at any step changes nothing and is answered with a 4xx and a short reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwatch.app.quieting import QuietConflict, change_quiet
from jobwatch.domain import quiet
from jobwatch.domain.slack_interaction import (
    MAX_BODY_BYTES,
    SNOOZE_S,
    BadInteraction,
    Interaction,
    Outcome,
    SlackAction,
    parse_interaction,
)
from jobwatch.domain.slack_signature import (
    MAX_SKEW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Refusal,
    SignatureRefused,
    verify,
)
from jobwatch.observability import logger
from jobwatch.ports import Clock, InteractionResponder, JobStore, ReplayGuard, Secrets, SecretUnavailableError

REPLAY_MARGIN_S = 60
"""A remembered signature outlives its request's acceptance window by this much (clock skew)."""


@dataclass(frozen=True, slots=True)
class InteractionRequest:
    """What arrived: header names in lower case, and the body's bytes exactly as received."""

    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer: status and JSON body; `refusal` names why a request was refused (for the log
    and metrics), None when it was applied."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None


def refused(status: int, refusal: str, message: str) -> Answer:
    return Answer(status, {"ok": False, "message": message}, refusal)


@dataclass
class SlackInteractions:
    store: JobStore
    clock: Clock
    secrets: Secrets
    signing_secret_name: str
    replays: ReplayGuard
    responder: InteractionResponder

    def handle(self, request: InteractionRequest) -> Answer:
        """One request from Slack's interactivity endpoint, answered as the module docstring says."""
        if len(request.body) > MAX_BODY_BYTES:
            return refused(413, "oversized", f"body larger than {MAX_BODY_BYTES} bytes")
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            signed_at = self._verify(timestamp, signature, request.body)
        except SignatureRefused as refusal:
            return refused(401, refusal.reason.value, str(refusal))
        except SecretUnavailableError as exc:
            logger.error("slack signing secret unavailable", extra={"reason": str(exc)})
            return refused(503, "no-secret", "signing secret unavailable")
        assert signature is not None  # verified
        try:
            interaction = parse_interaction(request.body)
        except BadInteraction as exc:
            return refused(400, "malformed", str(exc))
        return self._act(interaction, signature, signed_at)

    def _verify(self, timestamp: str | None, signature: str | None, body: bytes) -> int:
        """The request's signing time, or SignatureRefused; the secret is read only for a request
        that carries both headers."""
        if not timestamp or not signature:
            raise SignatureRefused(Refusal.UNSIGNED)
        secret = self.secrets.get(self.signing_secret_name)
        if not secret:
            raise SecretUnavailableError(f"secret {self.signing_secret_name!r} is empty")
        return verify(secret, timestamp, signature, body, self.clock.now())

    def _act(self, interaction: Interaction, signature: str, signed_at: int) -> Answer:
        if self.store.get_job(interaction.job_key) is None:
            return refused(404, "unknown-job", "unknown job (untracked already?)")
        if not self.replays.first_use(signature, signed_at + MAX_SKEW_S + REPLAY_MARGIN_S):
            return refused(409, "replayed", "request already handled (replayed)")
        try:
            outcome = self._apply(interaction)
        except QuietConflict:
            return refused(409, "busy", "the job kept changing; try again")
        if outcome is None:
            return refused(404, "unknown-job", "unknown job (untracked already?)")
        logger.info(
            "slack interaction applied",
            extra={
                "jobKey": interaction.job_key,
                "action": interaction.action.value,
                "actor": interaction.actor,
                "slackUserId": interaction.user.id,
                "slackTeamId": interaction.team_id,
                "slackChannelId": interaction.channel_id,
                "slackMessageTs": interaction.message_ts,
            },
        )
        updated = self.responder.respond(outcome)
        body = {
            "ok": True,
            "action": interaction.action.value,
            "jobKey": interaction.job_key,
            "by": interaction.actor,
            "snoozedUntil": outcome.snoozed_until,
            "messageUpdated": updated,
        }
        return Answer(200, body)

    def _apply(self, interaction: Interaction) -> Outcome | None:
        """The action, applied idempotently: a second Mute writes nothing, a second Snooze sets the
        same kind of snooze from now, an Untrack of a job deleted meanwhile is done all the same."""
        key, actor = interaction.job_key, interaction.actor
        now_iso = self.clock.now_iso()
        if interaction.action is SlackAction.UNTRACK:
            if self.store.delete_job(key):
                logger.info("job untracked", extra={"jobKey": key, "actor": actor})
            return Outcome(interaction, now_iso)
        if interaction.action is SlackAction.SNOOZE:
            saved = change_quiet(
                self.store,
                self.clock,
                key,
                lambda q, now: quiet.snooze(q, now, SNOOZE_S, actor),
                actor,
                "snoozed",
            )
        else:
            saved = change_quiet(
                self.store, self.clock, key, lambda q, _now: quiet.mute(q, actor), actor, "muted"
            )
        if saved is None:
            return None
        return Outcome(interaction, now_iso, snoozed_until=saved.quiet.snoozed_until)
