"""Administrators' verification page and decision: GET, HEAD and POST /verify.

The routes are in account_connections.api.verify.
"""

import gc

gc.disable()  # while the handler loads: account_connections.startup

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from account_connections.api.app import create_app, handle
from account_connections.api.verify import router
from account_connections.observability import logger, metrics, tracer
from account_connections.snapstart import prepare
from account_connections.startup import loaded

app = create_app(router)
# SnapStart: these services' SDK models loaded before the snapshot; no client kept.
prepare(["dynamodb", "stepfunctions", "sns"])
loaded()  # the collector on again, what was loaded frozen (account_connections.startup)


# No traced response: the page holds the link's token, which must not land in a trace.
# Form posts are not JSON: this router checks its own body size and content type.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context, check_body=False)
