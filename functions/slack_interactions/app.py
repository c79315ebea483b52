"""Slack interactivity: the buttons of a job's root message (public route; Slack's signature checked)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobwatch.entrypoints import slack_interactions
from jobwatch.observability import logger, metrics, tracer

# Cold start: settings and adapters once per container; a missing setting stops here, naming it.
INTERACTIONS = slack_interactions.cold_start()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return slack_interactions.handle(event, context, INTERACTIONS)
