"""Registration API: API Gateway REST proxy events in, JSON responses out (routes in jobwatch.api)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobwatch.entrypoints import api
from jobwatch.observability import logger, metrics, tracer

# Cold start: settings and adapters once per container; a missing setting stops here, naming it.
OPERATIONS = api.cold_start()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context, OPERATIONS)
