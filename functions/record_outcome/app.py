"""Workflow step: record how the request ended (verified, expired, failed) with its audit event.

The logic is in account_connections.steps.record_outcome.
"""

import gc

gc.disable()  # while the handler loads: account_connections.startup

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.observability import logger, metrics, tracer
from account_connections.snapstart import prepare
from account_connections.startup import loaded
from account_connections.steps import record_outcome

# SnapStart: these services' SDK models loaded before the snapshot; no client kept.
prepare(["dynamodb", "sns"])
loaded()  # the collector on again, what was loaded frozen (account_connections.startup)


# The execution input's correlation id (the creating request's id) tags every log line.
@logger.inject_lambda_context(correlation_id_path="correlationId")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return record_outcome.handle(event)
