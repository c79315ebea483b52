"""E-mail sender: one SQS batch of routed transition events in, partial batch failures out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobwatch.entrypoints.email_sender import handle_email_batch
from jobwatch.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_email_batch(event, context).response()
