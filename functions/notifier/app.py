"""Notifier: one SQS batch of transition events in, each routed to its destinations; partial batch
failures out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobwatch.entrypoints import notifier
from jobwatch.entrypoints.wiring import remaining
from jobwatch.observability import logger, metrics, tracer

# Cold start: settings and adapters once per container; a missing setting stops here, naming it.
NOTIFIER = notifier.cold_start()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return NOTIFIER.deliver(event, remaining(context)).response()
