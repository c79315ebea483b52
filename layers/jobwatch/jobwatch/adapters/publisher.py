"""SNS publisher: one publish per transition, bodies and attributes built by `jobwatch.messages`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwatch.messages import sns_publish_request
from jobwatch.model import Transition

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
