"""The registry in the state table: spaces, their members, each account's approval policy and
each address a policy names (``SUBSCRIPTION#<email>``: its SNS subscription and the accounts it
serves). Every change is written with its audit event in one transaction; the approvers' and
the addresses' on condition that they are still as read."""

from __future__ import annotations

from typing import Any

from account_connections.adapters.dynamodb.audit import put_event
from account_connections.adapters.dynamodb.keys import (
    ALL_APPROVERS,
    approver_key,
    member_key,
    space_key,
    subscription_key,
)
from account_connections.adapters.dynamodb.table import Item, Op, Table, public, serialize
from account_connections.domain.audit import AuditEvent, chain_of
from account_connections.domain.chain import ChainHead, link
from account_connections.domain.errors import DomainError, RegistryConflict, SpaceNotFound
from account_connections.domain.registry import AddressSubscription, Approver, Member, Space, SpaceRole
from account_connections.ports import Page


class _FirstConditionFailed(DomainError):
    """The first item's condition failed: the change names something that does not exist."""


# The head of a registry partition's hash chain (domain.chain), and how many times a change reads
# it again when another change of the partition moved it meanwhile.
CHAIN_SK = "CHAIN"
CHAIN_ATTEMPTS = 5


def _first_condition(codes: list[str]) -> DomainError | None:
    return _FirstConditionFailed("") if codes[:1] == ["ConditionalCheckFailed"] else None


def _lost_race(codes: list[str]) -> DomainError | None:
    """A guard failed, or DynamoDB cancelled the transaction for a concurrent one on its items."""
    if {"ConditionalCheckFailed", "TransactionConflict"} & set(codes):
        return RegistryConflict("the registry changed while this change was being written")
    return None


def _guarded(
    op: Op, condition: str, names: dict[str, str] | None = None, values: dict[str, Any] | None = None
) -> Op:
    """``op`` (a Put or a Delete) on ``condition`` in place of its own."""
    body = next(iter(op.values()))
    body["ConditionExpression"] = condition
    if names:
        body["ExpressionAttributeNames"] = names
    if values:
        body["ExpressionAttributeValues"] = serialize(values)
    return op


def _while_registered(op: Op, approver: Approver | None) -> Op:
    """``op`` on the account's registration while it is still ``approver`` (None: none): its first
    address and its time, which every registration sets later than the one it replaces
    (``logic.registry``), so that a policy changed meanwhile, even to the same first approver,
    fails it."""
    if approver is None:
        return _guarded(op, "attribute_not_exists(pk)")
    return _guarded(op, "#email = :email AND #updatedAt = :updatedAt",
                    {"#email": "email", "#updatedAt": "updatedAt"},
                    {":email": approver.email, ":updatedAt": approver.updatedAt})  # fmt: skip


def _at_version(op: Op, subscription: AddressSubscription) -> Op:
    """``op`` on the address's record while it is still at the version read (0: none stored)."""
    if subscription.version == 0:
        return _guarded(op, "attribute_not_exists(pk)")
    return _guarded(op, "#version = :version", {"#version": "version"}, {":version": subscription.version})


def _subscription_item(subscription: AddressSubscription) -> Item:
    """The record at its next version."""
    stored = subscription.model_dump(exclude={"version"}, exclude_none=True)
    return {**subscription_key(subscription.email), **stored, "version": subscription.version + 1}


def _approver_item(approver: Approver) -> Item:
    # ``addresses``: every address of the policy, for ``approvers_with_email``'s filter.
    return {**approver_key(approver.accountId), "gsi4pk": ALL_APPROVERS, "gsi4sk": approver.accountId,
            **approver.model_dump(), "addresses": approver.addresses()}  # fmt: skip


class DynamoRegistry:
    """The ``RegistryStore`` over the state table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def _chained(self, event: AuditEvent) -> list[Op]:
        """The put of ``event``, linked after its registry partition's chain head (read now from the
        partition's ``CHAIN`` item), and the update of that head on condition that it is still the
        one read: the last items of the change's transaction."""
        chain = chain_of(event)
        key = {"pk": chain, "sk": CHAIN_SK}
        item = self.table.get(key)
        head = (
            ChainHead(int(item["chainSeq"]), str(item["chainHead"]), str(item["chainAt"]))
            if item
            else ChainHead()
        )
        [linked], after = link([event], head, chain)
        fields = {"chainSeq": after.seq, "chainHead": after.hash, "chainAt": after.at}
        if head.seq == 0:
            update = self.table.update(key, set_fields=fields, condition="attribute_not_exists(pk)")
        else:
            update = self.table.update(
                key, set_fields=fields, condition="#chainSeq = :chainSeq", names={"#chainSeq": "chainSeq"},
                values={":chainSeq": head.seq},
            )  # fmt: skip
        return [put_event(self.table, linked), update]

    def _write(self, items: list[Op], event: AuditEvent | None) -> bool:
        """Write ``items`` with the change's event in one transaction. Returns False when the
        first item's condition failed (nothing is written then). Another change of the same
        registry partition written meanwhile moved its chain: read its head again and retry."""
        for attempt in range(1, CHAIN_ATTEMPTS + 1):
            chained = self._chained(event) if event is not None else []

            def refused(codes: list[str], chained: list[Op] = chained) -> DomainError | None:
                if (chained and codes[-1:] == ["ConditionalCheckFailed"]) or "TransactionConflict" in codes:
                    return RegistryConflict("the registry changed while this change was being written")
                return _first_condition(codes)

            try:
                self.table.transact([*items, *chained], refused)
            except _FirstConditionFailed:
                return False
            except RegistryConflict:
                if attempt == CHAIN_ATTEMPTS:
                    raise
                continue
            return True
        raise AssertionError("unreachable")

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
        """Unguarded, and without the address's record: for seeding state (the operators' routes
        use ``register_approver``)."""
        self._write([self.table.put(_approver_item(approver))], event)

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
        filtered on the address anywhere in a policy (a registration stored before policies has
        no ``addresses``, only its ``email``)."""
        items = self.table.query_all(
            IndexName="GSI4",
            KeyConditionExpression="gsi4pk = :pk",
            FilterExpression="contains(addresses, :email) OR email = :email",
            ExpressionAttributeValues={":pk": ALL_APPROVERS, ":email": email},
        )
        return [Approver.model_validate(public(item)) for item in items]

    # ---- the guarded registry of administrators and their addresses --------------------------

    def get_subscription(self, email: str) -> AddressSubscription | None:
        item = self.table.get(subscription_key(email))
        if item is None:
            return None
        return AddressSubscription.model_validate({**public(item), "version": int(item["version"])})

    def register_approver(
        self,
        approver: Approver,
        event: AuditEvent,
        *,
        replacing: Approver | None,
        serving: list[AddressSubscription],
        released: list[AddressSubscription],
    ) -> None:
        items = [
            _while_registered(self.table.put(_approver_item(approver)), replacing),
            *(_at_version(self.table.put(_subscription_item(record)), record) for record in serving),
            *(_at_version(self.table.put(_subscription_item(record)), record) for record in released),
        ]
        self.table.transact([*items, *self._chained(event)], _lost_race)

    def unregister_approver(
        self, approver: Approver, event: AuditEvent, *, released: list[AddressSubscription]
    ) -> None:
        items = [
            _while_registered(self.table.delete(approver_key(approver.accountId)), approver),
            *(_at_version(self.table.put(_subscription_item(record)), record) for record in released),
            *self._chained(event),
        ]
        self.table.transact(items, _lost_race)

    def save_subscription(self, subscription: AddressSubscription) -> AddressSubscription:
        op = _at_version(self.table.put(_subscription_item(subscription)), subscription)
        self.table.transact([op], _lost_race)
        return subscription.model_copy(update={"version": subscription.version + 1})

    def forget_subscription(self, subscription: AddressSubscription) -> None:
        op = _at_version(self.table.delete(subscription_key(subscription.email)), subscription)
        self.table.transact([op], _lost_race)
