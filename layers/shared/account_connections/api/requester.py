"""Requesters' routes: members of a space review its connections; SPACE_ADMIN and POWER_USER
request, cancel and disconnect them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from account_connections import wiring
from account_connections.api.app import SpaceIdPath, current_principal, header
from account_connections.api.problems import jwt_route_responses, problem_responses
from account_connections.domain.access import Principal
from account_connections.domain.connection import (
    Connection,
    ConnectionDetail,
    ConnectionPage,
    CreateConnectionRequest,
    CreateConnectionResponse,
)
from account_connections.domain.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidRequest
from account_connections.domain.fields import CONNECTION_ID_PATTERN
from account_connections.domain.limits import MAX_HISTORY_PAGE
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic import connections
from account_connections.logic.access import require_space_role
from account_connections.settings import RequesterApiSettings, load_settings

if TYPE_CHECKING:
    from account_connections.api import idempotency

router = APIGatewayHttpRouter()

# A create's refusals that come before its transaction checks the caller's role: an input the
# request cannot have (a role of another account, a bad Idempotency-Key) and a key's conflicts.
BEFORE_THE_WRITE = (InvalidRequest, IdempotencyKeyReused, IdempotencyInProgress)

ConnectionIdPath = Annotated[str, Path(pattern=CONNECTION_ID_PATTERN, description="The connection's id.")]
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

COMMON = jwt_route_responses({
    400: "Invalid input; `errors` names each field.",
    403: "Not a member of the space, or a role that may not do this.",
})  # fmt: skip


def settings() -> RequesterApiSettings:
    return load_settings(RequesterApiSettings)


def _principal() -> Principal:
    return current_principal(router, settings().groups_claim)


def member(space_id: str, *, mutate: bool) -> Principal:
    """The caller, checked against the space: any role to read, SPACE_ADMIN or POWER_USER to change.
    Serves every requester route, those of ``connection_roles`` too."""
    principal = _principal()
    require_space_role(wiring.registry(), principal, space_id, mutate=mutate)
    return principal


def _verify_base_url() -> str:
    """Where the emailed links start: the deployment's public base URL, else the API's own domain
    as API Gateway reports the endpoint the request reached (``requestContext.domainName``). Never
    a request header: the caller writes those, and a create sent with ``Host: evil.example`` would
    have the administrator emailed a real link to that host. (The template cannot derive the URL:
    the API depends on this function.)"""
    configured = settings().public_base_url.rstrip("/")
    if configured:
        return configured
    domain = router.current_event.request_context.domain_name
    if not domain:
        raise RuntimeError("API Gateway reported no domain name: set the PublicBaseUrl parameter")
    return f"https://{domain}"


def _create(
    body: CreateConnectionRequest, completion: idempotency.Completion | None = None
) -> CreateConnectionResponse:
    """The create; with an Idempotency-Key, its transaction also completes the key's record."""
    principal = _principal()
    space_id = router.current_event.path_parameters["spaceId"]
    store = wiring.connections() if completion is None else wiring.connections().completing(completion)
    return connections.create_connection(
        store,
        wiring.workflow(),
        principal,
        space_id,
        body,
        approval_timeout_seconds=settings().approval_timeout_seconds,
        verify_base_url=_verify_base_url(),
        correlation_id=router.current_event.request_context.request_id,
    )


def _replay(principal: Principal, stored: CreateConnectionResponse) -> CreateConnectionResponse:
    # The caller's role is checked in the swap's write (or read, when the answer writes nothing).
    return connections.replay_create(
        wiring.connections(), wiring.tokens(), wiring.registry(), principal, stored
    )


@router.post(
    "/spaces/<spaceId>/connections",
    summary="Request a connection to an AWS account",
    description="Stores the request, emails the account's administrator a verification link, and "
    "returns the connection with its `connectionToken` (shown only here). Send `Idempotency-Key` "
    "to make retries safe: the same key and body answer the same connection, with a new "
    "`connectionToken` that replaces the first (which then answers 410; the service keeps no copy "
    "of a token to answer again); a connection no longer pending answers with `connectionToken` "
    "empty. The same key with another body is a 409.",
    tags=["Requesters"],
    responses={
        201: {"description": "Requested; awaiting the administrator."},
        **COMMON,
        **problem_responses(
            {
                409: "The account has a live connection in the space, or the key was reused.",
                422: "No administrator is registered for the account.",
            }
        ),
    },
)
def create_connection(
    spaceId: SpaceIdPath, body: CreateConnectionRequest
) -> Response[CreateConnectionResponse]:
    # The caller's role is checked inside the create's transaction (``ConnectionStore.create``),
    # and a replay's (``replay_create``), not read first. A refusal that comes before that write
    # is preceded by the read, so that a caller who may not change the space hears that first, as
    # on every other route.
    principal = _principal()
    key = header(router, "Idempotency-Key")
    try:
        if key is None:
            created = _create(body)
        else:
            if not IDEMPOTENCY_KEY.match(key):
                raise InvalidRequest(
                    "the Idempotency-Key header is not valid",
                    errors=[{"field": "Idempotency-Key", "message": "1-255 printable ASCII characters"}],
                )
            # Imported by the first keyed create (with powertools' idempotency), not on a cold start.
            from account_connections.api import idempotency

            created = idempotency.create_once(
                idempotency.IdempotentCreate(key=key, principal=principal.sub, spaceId=spaceId, body=body),
                router.lambda_context, lambda completion: _create(body, completion),
                lambda stored: _replay(principal, stored), settings().idempotency_ttl_seconds,
            )  # fmt: skip
    except BEFORE_THE_WRITE:
        member(spaceId, mutate=True)
        raise
    return Response(status_code=201, content_type="application/json", body=created)


@router.get(
    "/spaces/<spaceId>/connections",
    summary="List the space's connections, newest first",
    tags=["Requesters"],
    responses={200: {"description": "A page of connections."}, **COMMON},
)
def list_connections(
    spaceId: SpaceIdPath,
    status: Annotated[ConnectionStatus | None, Query(description="Only this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.")] = 25,
    nextToken: Annotated[str | None, Query(max_length=2048, description="From the previous page.")] = None,
) -> ConnectionPage:
    member(spaceId, mutate=False)
    return connections.list_connections(wiring.connections(), spaceId, status, limit, nextToken)


@router.get(
    "/spaces/<spaceId>/connections/<connectionId>",
    summary="Read a connection with its roles and its history",
    description="The history comes in pages, oldest first: follow `historyNextToken`.",
    tags=["Requesters"],
    responses={
        200: {"description": "The connection."},
        **COMMON,
        **problem_responses({404: "No such connection."}),
    },
)
def get_connection(
    spaceId: SpaceIdPath,
    connectionId: ConnectionIdPath,
    historyLimit: Annotated[
        int, Query(ge=1, le=MAX_HISTORY_PAGE, description="Events of the history per page, 1-100.")
    ] = MAX_HISTORY_PAGE,
    historyNextToken: Annotated[
        str | None, Query(max_length=2048, description="From the previous page's `historyNextToken`.")
    ] = None,
) -> ConnectionDetail:
    member(spaceId, mutate=False)
    return connections.get_connection(
        wiring.connections(), spaceId, connectionId, history_limit=historyLimit,
        history_next_token=historyNextToken,
    )  # fmt: skip


@router.delete(
    "/spaces/<spaceId>/connections/<connectionId>",
    summary="Cancel a pending request, or disconnect a verified connection",
    tags=["Requesters"],
    responses={
        200: {"description": "The connection as it now is."},
        **COMMON,
        **problem_responses({404: "No such connection.", 409: "Neither pending nor verified."}),
    },
)
def cancel_connection(spaceId: SpaceIdPath, connectionId: ConnectionIdPath) -> Connection:
    principal = member(spaceId, mutate=True)
    return connections.cancel_connection(
        wiring.connections(), wiring.workflow(), principal, spaceId, connectionId
    )
