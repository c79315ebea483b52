"""`ports.EmailSubscriptions` on SNS: the alert e-mail topic's subscriptions for route e-mail destinations.

A route's e-mail destination is delivered by one publish to the alert e-mail topic with the message
attribute `destination` = its id (`email.<hash>`). Each address therefore holds one subscription
(SNS keeps one per address and topic) filtered on `{"destination": [ids]}`, scope MessageAttributes.
A subscription is jobwatch's when its filter is exactly that, with route destination ids only; the
topic's standing subscribers (the stack's AlertEmail, anything an operator added) never are, so they
are neither listed nor changed nor removed here.

ListSubscriptionsByTopic does not show filter policies, so each confirmed e-mail subscription is read
with GetSubscriptionAttributes; an unconfirmed one is listed as `PendingConfirmation`, without a
readable filter, and SNS allows no change to it until its address confirms.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobwatch.domain.routing import DEFAULT_EMAIL
from jobwatch.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

PENDING = "PendingConfirmation"
ROUTE_ID_PREFIX = DEFAULT_EMAIL + "."
"""Ids of route e-mail destinations with addresses (`email.<hash>`); the bare `email` is the topic's
standing subscribers' and never marks a subscription as jobwatch's."""


def route_filter(destination_ids: Sequence[str]) -> str:
    """The filter policy of an address subscribed for these destinations."""
    return json.dumps({"destination": sorted(set(destination_ids))}, separators=(",", ":"))


def route_ids(filter_policy: str | None, scope: str | None) -> tuple[str, ...] | None:
    """The destination ids of a filter that jobwatch set, None for any other filter (or none)."""
    if not filter_policy or (scope or "MessageAttributes") != "MessageAttributes":
        return None
    try:
        policy = json.loads(filter_policy)
    except ValueError:
        return None
    if not isinstance(policy, dict) or set(policy) != {"destination"}:
        return None
    ids = policy["destination"]
    if not isinstance(ids, list) or not ids:
        return None
    if not all(isinstance(i, str) and i.startswith(ROUTE_ID_PREFIX) for i in ids):
        return None
    return tuple(sorted(set(ids)))


@dataclass(frozen=True, slots=True)
class _Listed:
    arn: str
    ids: tuple[str, ...] | None
    """The route destinations of its filter; None when pending or not jobwatch's."""

    @property
    def pending(self) -> bool:
        return not self.arn.startswith("arn:")

    @property
    def ours(self) -> bool:
        return self.pending or self.ids is not None


class SnsEmailSubscriptions:
    """`ports.EmailSubscriptions` on one topic."""

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._known: dict[str, _Listed] = {}
        """The last listing, kept up to date by this adapter's own changes (a sync lists once)."""

    def _listing(self) -> dict[str, _Listed]:
        """Every e-mail subscription of the topic by address, with the route ids of its filter."""
        listed: dict[str, _Listed] = {}
        paginator = self._client.get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self._topic_arn):
            for subscription in page.get("Subscriptions", []):
                if subscription.get("Protocol") != "email" or "Endpoint" not in subscription:
                    continue
                arn = subscription.get("SubscriptionArn") or PENDING
                listed[subscription["Endpoint"]] = _Listed(arn, self._ids_of(arn))
        return listed

    def _ids_of(self, arn: str) -> tuple[str, ...] | None:
        if not arn.startswith("arn:"):
            return None
        attributes = self._client.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
        return route_ids(attributes.get("FilterPolicy"), attributes.get("FilterPolicyScope"))

    def _lookup(self, address: str) -> _Listed | None:
        if address not in self._known:
            self._known = self._listing()
        return self._known.get(address)

    def subscribed(self) -> dict[str, tuple[str, ...] | None]:
        self._known = self._listing()
        return {address: entry.ids for address, entry in self._known.items() if entry.ours}

    def subscribe(self, address: str, destination_ids: Sequence[str]) -> None:
        existing = self._lookup(address)
        policy = route_filter(destination_ids)
        if existing is None:
            response = self._client.subscribe(
                TopicArn=self._topic_arn,
                Protocol="email",
                Endpoint=address,
                Attributes={"FilterPolicy": policy, "FilterPolicyScope": "MessageAttributes"},
                ReturnSubscriptionArn=True,
            )
            ids = tuple(sorted(set(destination_ids)))
            self._known[address] = _Listed(response.get("SubscriptionArn", PENDING), ids)
            logger.info("e-mail address subscribed", extra={"address": address, "filterPolicy": policy})
        elif existing.pending:
            logger.info(
                "e-mail address has not confirmed: its filter changes later", extra={"address": address}
            )
        elif existing.ids is None:
            logger.warning(
                "e-mail address subscribed outside routes: left as it is", extra={"address": address}
            )
        else:
            self._client.set_subscription_attributes(
                SubscriptionArn=existing.arn, AttributeName="FilterPolicy", AttributeValue=policy
            )
            self._known[address] = _Listed(existing.arn, tuple(sorted(set(destination_ids))))
            logger.info("e-mail subscription re-pointed", extra={"address": address, "filterPolicy": policy})

    def unsubscribe(self, address: str) -> None:
        existing = self._lookup(address)
        if existing is None or existing.pending or existing.ids is None:
            return  # gone already, unconfirmed (SNS drops it after a few days), or not jobwatch's
        self._client.unsubscribe(SubscriptionArn=existing.arn)
        self._known.pop(address, None)
        logger.info("e-mail address unsubscribed", extra={"address": address})
