"""Space roles: may the caller read, or change, the space's connections?"""

from __future__ import annotations

from account_connections.domain.access import Principal, check_space_role
from account_connections.domain.registry import SpaceRole
from account_connections.ports import MemberLookup


def require_space_role(
    members: MemberLookup, principal: Principal, space_id: str, *, mutate: bool
) -> SpaceRole:
    """The caller's role in the space. Reading needs any role; changing needs SPACE_ADMIN or
    POWER_USER. Raises ``NotAuthorized``."""
    return check_space_role(members.get_member_role(space_id, principal.sub), space_id, mutate=mutate)
