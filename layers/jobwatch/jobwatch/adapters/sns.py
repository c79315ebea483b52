"""SNS publishers: one publish per transition, bodies and attributes built by `jobwatch.messages`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwatch.adapters.sns_message import email_publish_request, sns_publish_request
from jobwatch.domain.model import Transition

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient


class SnsPublisher:
    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, transition: Transition) -> str:
        request = sns_publish_request(transition)
        response = self._client.publish(TopicArn=self._topic_arn, **request)
        return response["MessageId"]


class SnsEmailPublisher:
    """Publishes the rendered e-mail of a transition to the alert e-mail topic (plain text)."""

    def __init__(self, client: SNSClient, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish_email(self, transition: Transition, destination: str) -> str:
        request = email_publish_request(transition)
        attributes = {
            **request["MessageAttributes"],
            "destination": {"DataType": "String", "StringValue": destination},
        }
        response = self._client.publish(
            TopicArn=self._topic_arn, **{**request, "MessageAttributes": attributes}
        )
        return response["MessageId"]
