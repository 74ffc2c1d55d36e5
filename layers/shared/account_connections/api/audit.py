"""Auditors' routes (the ``auditors`` group): every connection and every audit event, as JSON
pages or, with ``Accept: text/csv``, as CSV (the next page's token then travels in the
``X-Next-Token`` header)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from account_connections import wiring
from account_connections.api.app import current_principal, header
from account_connections.api.problems import jwt_route_responses
from account_connections.domain.access import AUDITORS, require_group
from account_connections.domain.audit import AuditEvent, AuditEventPage
from account_connections.domain.connection import Connection, ConnectionPage
from account_connections.domain.digest import Digest
from account_connections.domain.fields import (
    ACCOUNT_ID_PATTERN,
    CONNECTION_ID_PATTERN,
    SPACE_ID_PATTERN,
    USER_ID_PATTERN,
    Model,
)
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic import audit, digests
from account_connections.settings import AuditApiSettings, load_settings

router = APIGatewayHttpRouter()

CSV = "text/csv"
NEXT_TOKEN_HEADER = "X-Next-Token"
TAGS = ["Auditors"]
COMMON = jwt_route_responses({
    400: "Invalid filter, date range or nextToken; `errors` names each field.",
    403: "Not in the auditors group.",
})  # fmt: skip

From = Annotated[
    audit.Instant | None, Query(alias="from", description="ISO 8601 date or date-time, inclusive.")
]
To = Annotated[
    audit.Instant | None, Query(description="ISO 8601 date (the whole day) or date-time, inclusive.")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items read per page, 1-1000.")]
ExportLimit = Annotated[int, Query(ge=1, le=1000, description="Events a page, 1-1000.")]
NextToken = Annotated[str | None, Query(max_length=2048, description="From the previous page.")]


def _page_responses(model: type[BaseModel], what: str) -> dict[int, Any]:
    return {
        200: {
            "description": f"A page of {what}, newest first. A filtered page may hold fewer than `limit` "
            "items: follow `nextToken` (or the `X-Next-Token` header of a CSV page) until it is absent.",
            "content": {"application/json": {"model": model}, CSV: {"schema": {"type": "string"}}},
        },
        **COMMON,
    }


def settings() -> AuditApiSettings:
    return load_settings(AuditApiSettings)


def _require_auditor() -> None:
    require_group(current_principal(router, settings().groups_claim), AUDITORS)


def wants_csv(accept: str | None) -> bool:
    """True when the Accept header prefers ``text/csv`` to JSON (q-values honoured)."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))
    csv_weight = weights.get(CSV, 0.0)
    return csv_weight > 0 and csv_weight >= weights.get("application/json", 0.0)


def _respond(page: ConnectionPage | AuditEventPage, model: type[BaseModel]) -> Response[Any]:
    if not wants_csv(header(router, "Accept")):
        return Response(status_code=200, content_type="application/json", body=page)
    headers = {NEXT_TOKEN_HEADER: page.nextToken} if page.nextToken else None
    return Response(
        status_code=200,
        content_type=f"{CSV}; charset=utf-8",
        body=audit.to_csv(model, page.items),
        headers=headers,
    )


@router.get(
    "/audit/connections",
    summary="Every connection request, by status, space, account and creation date",
    tags=TAGS,
    responses=_page_responses(ConnectionPage, "connections"),
)
def audit_connections(
    status: Annotated[ConnectionStatus | None, Query(description="Only this status.")] = None,
    spaceId: Annotated[str | None, Query(pattern=SPACE_ID_PATTERN, description="Only this space.")] = None,
    accountId: Annotated[
        str | None, Query(pattern=ACCOUNT_ID_PATTERN, description="Only this account.")
    ] = None,
    from_: From = None,
    to: To = None,
    limit: Limit = 100,
    nextToken: NextToken = None,
) -> Response[ConnectionPage | str]:
    _require_auditor()
    page = audit.query_connections(
        wiring.audit_log(), status=status, space_id=spaceId, account_id=accountId,
        created_from=from_, created_to=to, limit=limit, next_token=nextToken,
    )  # fmt: skip
    return _respond(page, Connection)


@router.get(
    "/audit/events",
    summary="Every recorded change, by connection, actor and date",
    tags=TAGS,
    responses=_page_responses(AuditEventPage, "audit events"),
)
def audit_events(
    connectionId: Annotated[
        str | None, Query(pattern=CONNECTION_ID_PATTERN, description="Only this connection.")
    ] = None,
    actor: Annotated[
        str | None, Query(pattern=USER_ID_PATTERN, description="Only changes by this user.")
    ] = None,
    from_: From = None,
    to: To = None,
    limit: Limit = 100,
    nextToken: NextToken = None,
) -> Response[AuditEventPage | str]:
    _require_auditor()
    page = audit.query_events(
        wiring.audit_log(), connection_id=connectionId, actor=actor, at_from=from_, at_to=to,
        limit=limit, next_token=nextToken,
    )  # fmt: skip
    return _respond(page, AuditEvent)


JSON_LINES = "application/x-ndjson"


@router.get(
    "/audit/export",
    summary="Every audit event in the range as JSON Lines, oldest first: each hash chain in order",
    description="One event a line, with its place in its hash chain (`chain`, `seq`, `prevHash`, `hash`; "
    "docs/audit.md defines the canonical form the hashes are over). Oldest first, so each chain's "
    "events come in `seq` order. The next page's token is in the `X-Next-Token` header, absent on "
    "the last page. `acctconn audit export` follows it to the end.",
    tags=TAGS,
    responses={
        200: {
            "description": "A page of events, one JSON object a line.",
            "content": {JSON_LINES: {"schema": {"type": "string"}}},
            "headers": {
                NEXT_TOKEN_HEADER: {"description": "The next page's token.", "schema": {"type": "string"}}
            },
        },
        **COMMON,
    },
)
def audit_export(
    from_: From = None, to: To = None, limit: ExportLimit = 1000, nextToken: NextToken = None
) -> Response[str]:
    _require_auditor()
    page = audit.export_events(wiring.audit_log(), at_from=from_, at_to=to, limit=limit, next_token=nextToken)
    headers = {NEXT_TOKEN_HEADER: page.next_token} if page.next_token else None
    return Response(status_code=200, content_type=f"{JSON_LINES}; charset=utf-8",
                    body=audit.as_json_lines(page.items), headers=headers)  # fmt: skip


class DigestPage(Model):
    items: list[Digest]
    nextToken: str | None = None


@router.get(
    "/audit/digests",
    summary="The signed digests of the audit trail whose whole period is in the range, oldest first",
    description="Each digest names, for its period (`from` < `at` <= `to`), every hash chain that moved "
    "with its event count and last `seq` and `hash`, the previous digest's `hash`, and an RSASSA-PSS "
    'SHA-256 signature by the KMS key of `GET /audit/public-key` (docs/audit.md, "The digest format"). '
    "A digest is in the range when `from` <= its `from` and its `to` <= `to`; the first digest (no "
    "`from`) only when `from` is not given. Follow `nextToken` until it is absent.",
    tags=TAGS,
    responses={200: {"description": "A page of digests, oldest first."}, **COMMON},
)
def audit_digests(
    from_: From = None, to: To = None, limit: Limit = 100, nextToken: NextToken = None
) -> DigestPage:
    _require_auditor()
    page = digests.list_digests(wiring.digests(), at_from=from_, at_to=to, limit=limit, next_token=nextToken)
    return DigestPage(items=page.items, nextToken=page.next_token)


PEM = "application/x-pem-file"
KEY_ID_HEADER = "X-Key-Id"


@router.get(
    "/audit/public-key",
    summary="The public half of the key that signs the digests, as PEM",
    description="SubjectPublicKeyInfo in PEM; the key's ARN in the `X-Key-Id` header. The same as "
    "`aws kms get-public-key` of the stack output `DigestSigningKeyArn`: keep a copy, and check "
    "digests against it.",
    tags=TAGS,
    responses={
        200: {
            "description": "The public key.",
            "content": {PEM: {"schema": {"type": "string"}}},
            "headers": {KEY_ID_HEADER: {"description": "The key's ARN.", "schema": {"type": "string"}}},
        },
        **jwt_route_responses({403: "Not in the auditors group."}),
    },
)
def audit_public_key() -> Response[str]:
    _require_auditor()
    signer = wiring.signer()
    return Response(status_code=200, content_type=PEM, body=signer.public_key_pem(),
                    headers={KEY_ID_HEADER: signer.key_id})  # fmt: skip
