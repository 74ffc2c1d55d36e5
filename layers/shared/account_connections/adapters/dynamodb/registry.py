"""The registry in the state table: spaces, their members, and each account's administrator.
Every change is written with its audit event in one transaction."""

from __future__ import annotations

from typing import Any

from account_connections.adapters.dynamodb.audit import put_event
from account_connections.adapters.dynamodb.keys import ALL_APPROVERS, approver_key, member_key, space_key
from account_connections.adapters.dynamodb.table import Op, Table, public
from account_connections.domain.audit import AuditEvent
from account_connections.domain.errors import DomainError, SpaceNotFound
from account_connections.domain.registry import Approver, Member, Space, SpaceRole
from account_connections.ports import Page


class _FirstConditionFailed(DomainError):
    """The first item's condition failed: the change names something that does not exist."""


def _first_condition(codes: list[str]) -> DomainError | None:
    return _FirstConditionFailed("") if codes[:1] == ["ConditionalCheckFailed"] else None


class DynamoRegistry:
    """The ``RegistryStore`` over the state table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def _write(self, items: list[Op], event: AuditEvent | None) -> bool:
        """Write ``items`` with the change's event in one transaction. Returns False when the
        first item's condition failed (nothing is written then)."""
        if event is not None:
            items = [*items, put_event(self.table, event)]
        try:
            self.table.transact(items, _first_condition)
        except _FirstConditionFailed:
            return False
        return True

    # ---- spaces and members ----------------------------------------------------------------

    def put_space(self, space: Space, event: AuditEvent | None = None) -> None:
        self._write([self.table.put({**space_key(space.spaceId), **space.model_dump()})], event)

    def get_space(self, space_id: str) -> Space | None:
        item = self.table.get(space_key(space_id))
        return Space.model_validate(public(item)) if item else None

    def put_member(self, member: Member, event: AuditEvent | None = None) -> None:
        """In one transaction with a check that the space exists. Raises ``SpaceNotFound``."""
        item = {**member_key(member.spaceId, member.userId), **member.model_dump()}
        if not self._write([self.table.check(space_key(member.spaceId)), self.table.put(item)], event):
            raise SpaceNotFound(f"space {member.spaceId} does not exist")

    def delete_member(self, space_id: str, user_id: str, event: AuditEvent | None = None) -> bool:
        return self._write([self.table.delete(member_key(space_id, user_id))], event)

    def get_member_role(self, space_id: str, user_id: str) -> SpaceRole | None:
        item = self.table.get(member_key(space_id, user_id))
        return SpaceRole(item["role"]) if item else None

    # ---- administrators --------------------------------------------------------------------

    def put_approver(self, approver: Approver, event: AuditEvent | None = None) -> None:
        item = {**approver_key(approver.accountId), "gsi4pk": ALL_APPROVERS, "gsi4sk": approver.accountId,
                **approver.model_dump()}  # fmt: skip
        self._write([self.table.put(item)], event)

    def get_approver(self, account_id: str) -> Approver | None:
        item = self.table.get(approver_key(account_id))
        return Approver.model_validate(public(item)) if item else None

    def delete_approver(self, account_id: str, event: AuditEvent | None = None) -> bool:
        return self._write([self.table.delete(approver_key(account_id))], event)

    def list_approvers(self, limit: int, next_token: str | None) -> Page[Approver]:
        """By account ID, one Query of the approvers' partition of GSI4."""
        kwargs: dict[str, Any] = {
            "IndexName": "GSI4",
            "KeyConditionExpression": "gsi4pk = :pk",
            "ExpressionAttributeValues": {":pk": ALL_APPROVERS},
        }
        items, token = self.table.page(kwargs, "gsi4pk", ALL_APPROVERS, limit, next_token)
        return Page([Approver.model_validate(item) for item in items], token)

    def approvers_with_email(self, email: str) -> list[Approver]:
        """One SNS subscription serves them all: a Query of the approvers' partition of GSI4,
        filtered on the address."""
        items = self.table.query_all(
            IndexName="GSI4",
            KeyConditionExpression="gsi4pk = :pk",
            FilterExpression="email = :email",
            ExpressionAttributeValues={":pk": ALL_APPROVERS, ":email": email},
        )
        return [Approver.model_validate(public(item)) for item in items]
