"""Operators' routes: spaces, members and the approver registry (account_connections.api.operator)."""

import gc

gc.disable()  # while the handler loads: account_connections.startup

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.api.app import create_app, handle
from account_connections.api.operator import router
from account_connections.observability import logger, metrics, tracer
from account_connections.snapstart import prepare
from account_connections.startup import loaded

app = create_app(router)
# SnapStart: these services' SDK models loaded before the snapshot; no client kept.
prepare(["dynamodb", "sns"])
loaded()  # the collector on again, what was loaded frozen (account_connections.startup)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
