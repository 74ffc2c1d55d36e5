"""Workflow step: record how the request ended (verified, expired, failed) with its audit event.

The logic is in account_connections.steps.record_outcome.
"""

import gc

gc.disable()  # while the handler loads: account_connections.startup

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.observability import logger, metrics, tracer
from account_connections.startup import loaded
from account_connections.steps import record_outcome

# Loaded (account_connections.startup); SnapStart loads these services' SDK models before its
# snapshot, keeping no client.
loaded(["dynamodb", "sns"])


# The execution input's correlation id (the creating request's id) tags every log line.
@logger.inject_lambda_context(correlation_id_path="correlationId")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return record_outcome.handle(event)
