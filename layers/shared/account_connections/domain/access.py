"""Who is calling and what they may do, as pure rules.

Identity is the JWT that API Gateway's authorizer verified; its claims arrive in the event.
Global groups (``auditors``, ``operators``) come from a configurable claim; space roles
(``SPACE_ADMIN``, ``POWER_USER``, ``LIMITED_ACCESS``) come from the state table.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from account_connections.domain.errors import NotAuthenticated, NotAuthorized
from account_connections.domain.registry import SpaceRole

AUDITORS = "auditors"
OPERATORS = "operators"
MUTATING_ROLES = frozenset({SpaceRole.SPACE_ADMIN, SpaceRole.POWER_USER})


class Principal(NamedTuple):
    sub: str
    groups: frozenset[str]
    # The JWT's ``email`` claim, when the identity provider sends one: a link sent to it is the
    # requester's own, and never decides their request.
    email: str | None = None


def parse_groups(raw: Any) -> frozenset[str]:
    """Groups as API Gateway passes them, each name matched exactly: a JSON list as is; the HTTP
    API's ``"[a b]"`` rendering of a list claim split on whitespace only; any other string is one
    group. Cognito group names may hold commas but no whitespace, so a comma never separates:
    splitting on it would let a group named ``x,auditors`` grant ``auditors``."""
    if raw is None:
        return frozenset()
    if isinstance(raw, list):
        return frozenset(str(group) for group in raw)
    text = str(raw)
    if text.startswith("[") and text.endswith("]"):
        return frozenset(text[1:-1].split())
    return frozenset({text}) if text else frozenset()


def principal_from_claims(claims: dict[str, Any] | None, groups_claim: str) -> Principal:
    """Raises ``NotAuthenticated`` when there is no subject."""
    claims = claims or {}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise NotAuthenticated("a valid bearer token is required")
    email = claims.get("email")
    return Principal(
        sub=sub,
        groups=parse_groups(claims.get(groups_claim)),
        email=email if isinstance(email, str) else None,
    )


def require_group(principal: Principal, group: str) -> None:
    """Raises ``NotAuthorized`` unless the caller is in ``group``."""
    if group not in principal.groups:
        raise NotAuthorized(f"this operation needs membership of the {group} group")


def space_role_refusal(role: SpaceRole | None, space_id: str, *, mutate: bool) -> NotAuthorized | None:
    """Why the caller's role in the space (None: not a member) does not allow the operation, or
    None when it does: reading needs any role, changing needs SPACE_ADMIN or POWER_USER. The one
    wording of these refusals, whether the role was read first or checked inside a write (the
    create's transaction)."""
    if role is None:
        return NotAuthorized(f"you are not a member of space {space_id}")
    if mutate and role not in MUTATING_ROLES:
        return NotAuthorized(f"this operation needs the SPACE_ADMIN or POWER_USER role in space {space_id}")
    return None


def check_space_role(role: SpaceRole | None, space_id: str, *, mutate: bool) -> SpaceRole:
    """The caller's role in the space, if it allows the operation (``space_role_refusal``).
    Raises ``NotAuthorized``."""
    refusal = space_role_refusal(role, space_id, mutate=mutate)
    if refusal is not None:
        raise refusal
    assert role is not None
    return role
