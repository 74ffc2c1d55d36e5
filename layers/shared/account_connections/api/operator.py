"""Operators' routes (the ``operators`` group): spaces, their members, and the registry of each
account's approval policy (who approves its connections).

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
    summary="Register the account's approval policy (or its one administrator)",
    description="The body is either `{email}` (one administrator, who alone approves) or an approval "
    "policy: `approvers` (1-10 addresses, each emailed a link of its own), `quorum` (how many of them "
    "must approve; one rejection rejects), `remindAfterSeconds` (when the undecided get a new link), "
    "`escalateAfterSeconds` with `escalateTo` (who else gets links, and counts as an approver, when "
    "the quorum is not reached by then), and in either form `approverPrincipals` (the IAM roles or "
    "users whose account proofs count). Every timer counts from the request and must fall before "
    "the approval window closes. Each address is subscribed to the approval topic with a filter "
    "policy that lets through only the messages of the accounts it serves that name it a recipient; "
    "SNS first asks the address to confirm. An address the previous policy named and this one does "
    "not stops receiving the account's messages (its subscription is removed when it serves no other "
    "account). When the policy changed, each pending request of the account gets new links under it "
    "(the previous links answer 410, replaced).",
    tags=TAGS,
    responses={
        200: {"description": "The policy as registered."},
        **COMMON,
        **problem_responses(
            {409: "Another operator kept changing the account or an address; send it again."}
        ),
    },
)
def put_approver(accountId: AccountIdPath, body: PutApproverRequest) -> Approver:
    return registry.put_approver(
        wiring.registry(), wiring.subscriptions(), wiring.connections(), wiring.mailer(), _operator(),
        accountId, body, window_seconds=settings().approval_timeout_seconds,
    )  # fmt: skip


@router.delete(
    "/approvers/<accountId>",
    summary="Unregister the account's approval policy",
    description="None of the policy's addresses receives the account's messages any more (an "
    "address that serves no other account loses its subscription). The live links of the "
    "account's pending requests stop working (410, revoked); each request waits for the next "
    "policy registered, whose approvers get new links, or expires.",
    tags=TAGS,
    responses={
        **DELETED,
        **COMMON,
        **problem_responses({
            404: "No administrator is registered for the account.",
            409: "Another operator kept changing the account or an address; send it again.",
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
    summary="List the accounts' approval policies by account ID",
    tags=TAGS,
    responses={200: {"description": "A page of approval policies."}, **COMMON},
)
def list_approvers(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1-100.")] = 25,
    nextToken: Annotated[str | None, Query(max_length=2048, description="From the previous page.")] = None,
) -> ApproverPage:
    _operator()
    return registry.list_approvers(wiring.registry(), limit, nextToken)
