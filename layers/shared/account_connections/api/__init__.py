"""The HTTP API: one powertools Router per audience, and ``routers()`` for the whole document."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter


def routers() -> list[APIGatewayHttpRouter]:
    """Every router of the API, for the OpenAPI document (imported here, on use, so that each
    function imports only its own router)."""
    from account_connections.api.audit import router as audit
    from account_connections.api.connection_roles import router as connection_roles
    from account_connections.api.docs import router as docs
    from account_connections.api.operator import router as operator
    from account_connections.api.requester import router as requester
    from account_connections.api.verify import router as verify

    return [requester, connection_roles, verify, operator, audit, docs]
