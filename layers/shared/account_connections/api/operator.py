"""Operators' routes (the ``operators`` group): spaces, their members, and the registry of the
administrators who approve connections of each account.

PUT answers 200 with the object as stored; DELETE answers 204 with no body.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from account_connections import wiring
from account_connections.api.app import SpaceIdPath, current_principal
from account_connections.api.problems import jwt_route_responses, problem_responses
from account_connections.domain.access import OPERATORS, Principal, require_group
from account_connections.domain.fields import ACCOUNT_ID_PATTERN, USER_ID_PATTERN
from account_connections.domain.registry import (
    Approver,
    ApproverPage,
    Member,
    PutApproverRequest,
    PutMemberRequest,
    PutSpaceRequest,
    Space,
)
from account_connections.logic import registry
from account_connections.settings import OperatorApiSettings, load_settings

router = APIGatewayHttpRouter()

UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, description="The user's id (the JWT `sub`).")]
AccountIdPath = Annotated[
    str, Path(pattern=ACCOUNT_ID_PATTERN, description="The twelve-digit AWS account ID.")
]

TAGS = ["Operators"]
COMMON = jwt_route_responses({
    400: "Invalid input; `errors` names each field.",
    403: "Not in the operators group.",
})  # fmt: skip
DELETED: dict[int, Any] = {204: {"description": "Removed; no body."}}


def settings() -> OperatorApiSettings:
    return load_settings(OperatorApiSettings)


def _operator() -> Principal:
    principal = current_principal(router, settings().groups_claim)
    require_group(principal, OPERATORS)
    return principal


@router.put(
    "/spaces/<spaceId>",
    summary="Create a space or rename it",
    tags=TAGS,
    responses={200: {"description": "The space as stored."}, **COMMON},
)
def put_space(spaceId: SpaceIdPath, body: PutSpaceRequest) -> Space:
    return registry.put_space(wiring.registry(), _operator(), spaceId, body)


@router.put(
    "/spaces/<spaceId>/members/<userId>",
    summary="Add a member to a space, or change their role",
    tags=TAGS,
    responses={
        200: {"description": "The membership as stored."},
        **COMMON,
        **problem_responses({404: "No such space."}),
    },
)
def put_member(spaceId: SpaceIdPath, userId: UserIdPath, body: PutMemberRequest) -> Member:
    return registry.put_member(wiring.registry(), _operator(), spaceId, userId, body)


@router.delete(
    "/spaces/<spaceId>/members/<userId>",
    summary="Remove a member from a space",
    tags=TAGS,
    responses={
        **DELETED,
        **COMMON,
        **problem_responses({404: "No such space, or the user is not a member."}),
    },
)
def delete_member(spaceId: SpaceIdPath, userId: UserIdPath) -> Response[None]:
    registry.delete_member(wiring.registry(), _operator(), spaceId, userId)
    return Response(status_code=204)


@router.put(
    "/approvers/<accountId>",
    summary="Register the administrator who approves the account's connections",
    description="Subscribes the email address to the approval topic with a filter policy on the "
    "account, so that it receives only this account's requests; SNS first asks the address to "
    "confirm. A different address replaces the registered one, whose subscription is removed; each "
    "pending request of the account then gets a new link, sent to the address registered now "
    "(the previous link answers 410, replaced).",
    tags=TAGS,
    responses={
        200: {"description": "The administrator as registered."},
        **COMMON,
        **problem_responses(
            {409: "Another operator kept changing the account or the address; send it again."}
        ),
    },
)
def put_approver(accountId: AccountIdPath, body: PutApproverRequest) -> Approver:
    return registry.put_approver(
        wiring.registry(), wiring.subscriptions(), wiring.connections(), wiring.mailer(), _operator(),
        accountId, body,
    )  # fmt: skip


@router.delete(
    "/approvers/<accountId>",
    summary="Unregister the account's administrator and remove their subscription",
    description="The live links of the account's pending requests stop working (410, revoked); "
    "each request waits for the next administrator registered, who gets a new link, or expires.",
    tags=TAGS,
    responses={
        **DELETED,
        **COMMON,
        **problem_responses({
            404: "No administrator is registered for the account.",
            409: "Another operator kept changing the account or the address; send it again.",
        }),
    },
)  # fmt: skip
def delete_approver(accountId: AccountIdPath) -> Response[None]:
    registry.delete_approver(
        wiring.registry(), wiring.subscriptions(), wiring.connections(), _operator(), accountId
    )
    return Response(status_code=204)


@router.get(
    "/approvers",
    summary="List the registered administrators by account ID",
    tags=TAGS,
    responses={200: {"description": "A page of administrators."}, **COMMON},
)
def list_approvers(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.")] = 25,
    nextToken: Annotated[str | None, Query(max_length=2048, description="From the previous page.")] = None,
) -> ApproverPage:
    _operator()
    return registry.list_approvers(wiring.registry(), limit, nextToken)
