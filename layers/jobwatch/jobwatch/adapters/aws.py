"""boto3 clients, created lazily and once per process so importing a handler stays cheap.

`AWS_ENDPOINT_URL` (honoured natively by boto3) points every client at moto server offline.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_sns.client import SNSClient
    from mypy_boto3_sqs.client import SQSClient


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=32,
    )


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _session().client("dynamodb", config=_config())
    return client


@cache
def sns() -> SNSClient:
    client: SNSClient = _session().client("sns", config=_config())
    return client


@cache
def sqs() -> SQSClient:
    client: SQSClient = _session().client("sqs", config=_config())
    return client


@cache
def secretsmanager() -> SecretsManagerClient:
    client: SecretsManagerClient = _session().client("secretsmanager", config=_config())
    return client


@cache
def events() -> Any:
    """EventBridge (`events`); typed as Any until `boto3-stubs[events]` is a dev dependency."""
    return _session().client("events", config=_config())
