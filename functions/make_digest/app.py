"""The audit digest job: on its EventBridge schedule, sign the head of every hash chain that moved
since the last digest (docs/audit.md, "Digests").

The logic is in account_connections.jobs.make_digest.
"""

import gc

gc.disable()  # while the handler loads: account_connections.startup

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.jobs import make_digest
from account_connections.observability import logger, metrics, tracer
from account_connections.snapstart import prepare
from account_connections.startup import loaded

# SnapStart: these services' SDK models loaded before the snapshot; no client kept.
prepare(["dynamodb", "kms"])
loaded()  # the collector on again, what was loaded frozen (account_connections.startup)


# The scheduled event's id (one per schedule tick) tags every log line.
@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return make_digest.handle(event)
