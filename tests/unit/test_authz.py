"""The caller from the JWT claims, global groups, and space roles."""

from __future__ import annotations

from typing import Any

import pytest

from account_connections.domain.access import (
    AUDITORS,
    OPERATORS,
    Principal,
    parse_groups,
    principal_from_claims,
    require_group,
)
from account_connections.domain.errors import NotAuthenticated, NotAuthorized
from account_connections.domain.registry import SpaceRole
from account_connections.logic.access import require_space_role


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        ("[auditors operators]", {"auditors", "operators"}),  # how the HTTP API renders a list claim
        ("[auditors]", {"auditors"}),
        ("[]", set()),
        (["auditors", "operators"], {"auditors", "operators"}),
        ("auditors", {"auditors"}),
        ("", set()),
        (None, set()),
        # Names are exact: a comma is part of a Cognito group's name, never a separator
        ("x,auditors", {"x,auditors"}),
        ("[x,auditors ops]", {"x,auditors", "ops"}),
        (["x,auditors", "x auditors"], {"x,auditors", "x auditors"}),
        ("auditors operators", {"auditors operators"}),  # a plain string claim is one group
    ],
)
def test_groups_from_every_rendering_of_the_claim(raw: Any, groups: set[str]) -> None:
    assert parse_groups(raw) == groups


@pytest.mark.parametrize("claim", ["x,auditors", "[x,auditors]", "[x,operators y,auditors]", "auditors,x"])
def test_a_group_whose_name_holds_a_comma_grants_nothing_else(claim: str) -> None:
    principal = principal_from_claims({"sub": "eve", "cognito:groups": claim}, "cognito:groups")
    assert not principal.groups & {"auditors", "operators"}


def test_principal_from_claims_uses_the_configured_groups_claim() -> None:
    claims = {"sub": "audrey", "custom:groups": "[auditors]", "cognito:groups": "[operators]"}
    assert principal_from_claims(claims, "custom:groups") == Principal("audrey", frozenset({"auditors"}))


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": 5}, {"cognito:groups": "[operators]"}])
def test_no_subject_is_not_authenticated(claims: dict[str, Any] | None) -> None:
    with pytest.raises(NotAuthenticated):
        principal_from_claims(claims, "cognito:groups")


def test_require_group() -> None:
    auditor = Principal("audrey", frozenset({AUDITORS}))
    require_group(auditor, AUDITORS)
    with pytest.raises(NotAuthorized, match="operators"):
        require_group(auditor, OPERATORS)


class Members:
    def __init__(self, roles: dict[tuple[str, str], SpaceRole]) -> None:
        self.roles = roles

    def get_member_role(self, space_id: str, user_id: str) -> SpaceRole | None:
        return self.roles.get((space_id, user_id))


MEMBERS = Members({
    ("demo", "alice"): SpaceRole.SPACE_ADMIN,
    ("demo", "bob"): SpaceRole.POWER_USER,
    ("demo", "carol"): SpaceRole.LIMITED_ACCESS,
})  # fmt: skip


@pytest.mark.parametrize("user", ["alice", "bob", "carol"])
def test_every_member_may_read(user: str) -> None:
    assert require_space_role(MEMBERS, Principal(user, frozenset()), "demo", mutate=False) in SpaceRole


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_space_admins_and_power_users_may_change(user: str) -> None:
    require_space_role(MEMBERS, Principal(user, frozenset()), "demo", mutate=True)


def test_limited_access_may_not_change() -> None:
    with pytest.raises(NotAuthorized, match="SPACE_ADMIN or POWER_USER"):
        require_space_role(MEMBERS, Principal("carol", frozenset()), "demo", mutate=True)


@pytest.mark.parametrize("mutate", [False, True])
def test_non_members_and_global_groups_have_no_space_role(mutate: bool) -> None:
    for principal in (
        Principal("mallory", frozenset()),
        Principal("oscar", frozenset({OPERATORS, AUDITORS})),
    ):
        with pytest.raises(NotAuthorized, match="not a member"):
            require_space_role(MEMBERS, principal, "demo", mutate=mutate)
    with pytest.raises(NotAuthorized):
        require_space_role(MEMBERS, Principal("alice", frozenset()), "other", mutate=mutate)
