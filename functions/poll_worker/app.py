"""Poll worker: a batch of shard orders from SQS in, each shard polled for its tick; partial batch
failures out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobwatch.entrypoints import poll_worker
from jobwatch.observability import logger, metrics, tracer

# Cold start: settings and adapters once per container; a missing setting stops here, naming it.
DEPS = poll_worker.cold_start()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return poll_worker.run(DEPS, event, context)
