"""Requesters' routes after the request: resend the approval link, attach and detach roles.

Served by the requesters' function next to ``api.requester``; same identity and space roles.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from account_connections import wiring
from account_connections.api import requester
from account_connections.api.app import SpaceIdPath
from account_connections.api.problems import PROBLEM_JSON, problem_responses
from account_connections.api.requester import ConnectionIdPath, settings
from account_connections.domain.connection import AttachRoleRequest, ConnectionDetail, RoleAttachment
from account_connections.domain.fields import ROLE_NAME_PATTERN
from account_connections.logic import connections, links, roles

router = APIGatewayHttpRouter()

RoleNamePath = Annotated[str, Path(pattern=ROLE_NAME_PATTERN, description="The role's name.")]
COMMON = {**requester.COMMON, **problem_responses({404: "No such connection."})}


@router.post(
    "/spaces/<spaceId>/connections/<connectionId>/resend",
    summary="Email the administrator a new approval link",
    description="Pending requests only. The previous link stops working at once (410, replaced); "
    "the connection token handed over at creation keeps working. At most one new link a minute and "
    "ten links in all per request (the first one included).",
    tags=["Requesters"],
    responses={
        200: {"description": "A new link was sent."},
        **COMMON,
        **problem_responses({409: "Not pending, or the first link is still being sent."}),
        429: {
            "description": "Too many links: `Retry-After` says in how many seconds the next may go; "
            "without it, all ten are used.",
            "headers": {
                "Retry-After": {
                    "description": "Seconds until a new link may go.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
            "content": {PROBLEM_JSON: {}},
        },
    },
)
def resend_link(spaceId: SpaceIdPath, connectionId: ConnectionIdPath) -> links.LinkSent:
    principal = requester.member(spaceId, mutate=True)
    return links.resend_link(wiring.connections(), wiring.registry(), wiring.mailer(), principal, spaceId,
                             connectionId)  # fmt: skip


@router.post(
    "/spaces/<spaceId>/connections/<connectionId>/roles",
    summary="Attach an IAM role to a verified connection",
    description="Checked as the workflow checks roles: in the connection's account, readable through "
    "the account's verifier role, and trusting the runner principal. A connection has at most 10 roles "
    "(attached or refused); attaching a recorded role again checks it again.",
    tags=["Requesters"],
    responses={
        201: {"description": "Attached."},
        **COMMON,
        **problem_responses({
            409: "The connection is not verified, or already has 10 roles.",
            422: "The role failed its check; `detail` says why.",
            503: "STS or IAM did not answer; try again.",
        }),
    },
)  # fmt: skip
def attach_role(
    spaceId: SpaceIdPath, connectionId: ConnectionIdPath, body: AttachRoleRequest
) -> Response[RoleAttachment]:
    principal = requester.member(spaceId, mutate=True)
    attached = roles.attach_role(
        wiring.connections(), wiring.verifier(), settings().runner_principal_arn, principal, spaceId,
        connectionId, body.roleArn,
    )  # fmt: skip
    return Response(status_code=201, content_type="application/json", body=attached)


@router.delete(
    "/spaces/<spaceId>/connections/<connectionId>/roles/<roleName>",
    summary="Detach a role from a connection",
    tags=["Requesters"],
    responses={200: {"description": "The connection as it now is."}, **COMMON,
               **problem_responses({404: "No such connection, or no such role on it."})},
)  # fmt: skip
def detach_role(
    spaceId: SpaceIdPath, connectionId: ConnectionIdPath, roleName: RoleNamePath
) -> ConnectionDetail:
    principal = requester.member(spaceId, mutate=True)
    roles.detach_role(wiring.connections(), principal, spaceId, connectionId, roleName)
    return connections.get_connection(wiring.connections(), spaceId, connectionId)
