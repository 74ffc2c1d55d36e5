"""Connections in the state table, with their roles, links and history: the ``ConnectionStore``.

Every change is one ``TransactWriteItems``: the conditional write of the connection item (its
status and version as read, or just its status for a change that keeps it) and the put of its
audit event, with whatever else must change with it (the account's live lock, a token, a role).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from account_connections.adapters.dynamodb.audit import put_event
from account_connections.adapters.dynamodb.keys import (
    ALL_CONNECTIONS,
    CONNECTION_SK,
    EVENT_PREFIX,
    ROLE_PREFIX,
    approver_key,
    connection_key,
    connection_pk,
    live_key,
    member_key,
    proof_key,
    role_key,
    vote_key,
)
from account_connections.adapters.dynamodb.table import (
    Cancelled,
    Item,
    Op,
    Table,
    decode_next_token,
    encode_next_token,
    invalid_next_token,
    public,
)
from account_connections.adapters.dynamodb.tokens import put_token, refresh_token, retire_token
from account_connections.domain.access import MUTATING_ROLES, space_role_refusal
from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.chain import ChainHead, link
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Connection,
    ConnectionSecrets,
    RoleAttachment,
    ShownRequest,
    StatusChange,
    approval_event,
    connection_event,
    request_digest,
    requested_event,
    role_event,
    status_event,
    token_replaced_event,
)
from account_connections.domain.errors import (
    AccountProofRefused,
    ApprovalsMoved,
    ApproverAlreadyDecided,
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    DomainError,
    IdempotencyInProgress,
)
from account_connections.domain.limits import MAX_ROLES, too_many_roles
from account_connections.domain.policy import ApprovalPolicy, RegisteredPolicyDiffers, copied_at_create
from account_connections.domain.registry import Approver, SpaceRole, no_administrator
from account_connections.domain.statuses import LIVE_STATUSES, ConnectionStatus, can_transition
from account_connections.domain.tokens import LinkToken, TokenState
from account_connections.ports import LinkChange, Page, Verdict

# A spent proof is remembered past the five minutes it could be replayed in.
PROOF_RETENTION_SECONDS = 24 * 3600


def connection_item(connection: Connection, **internal: Any) -> Item:
    sort = f"{connection.createdAt}#{connection.connectionId}"
    item = connection.model_dump(exclude_none=True)
    item.update(
        **connection_key(connection.connectionId),
        gsi1pk=f"SPACE#{connection.spaceId}",
        gsi1sk=sort,
        gsi2pk=f"ACCOUNT#{connection.accountId}",
        gsi2sk=sort,
        gsi3pk=f"STATUS#{connection.status}",
        gsi3sk=sort,
        gsi4pk=ALL_CONNECTIONS,
        gsi4sk=sort,
    )
    item.update({key: value for key, value in internal.items() if value is not None})
    return item


def _secrets(item: Item) -> ConnectionSecrets:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value) if value else None

    links = {str(address): str(token_hash) for address, token_hash in (item.get("links") or {}).items()}
    if not links and item.get("linkTokenHash"):  # stored before links were per approver
        links = {str(item.get("approverEmail") or ""): str(item["linkTokenHash"])}
    policy = item.get("policy")
    needed = item.get("approvalsNeeded")
    return ConnectionSecrets(
        links=links,
        connection_token_hash=text("connectionTokenHash"),
        task_token=text("taskToken"),
        csrf_secret=text("csrfSecret"),
        verify_base_url=text("verifyBaseUrl"),
        request_digest=text("requestDigest"),
        requester_email=text("requesterEmail"),
        policy=ApprovalPolicy.model_validate(_plain(policy)) if policy else None,
        escalated=bool(item.get("escalated", False)),
        approval_round=int(item.get("approvalRound", 0)),
        approvals_needed=int(needed) if needed is not None else None,
        notified=tuple(str(address) for address in item.get("notified") or ()),
        revision=int(item.get("revision", 0)),
    )


def _plain(value: Any) -> Any:
    """A DynamoDB value with its numbers as ints (the policy's are all whole seconds and counts)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return int(value)
    return value


def _at_revision(revision: int) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition that the connection's links and approvals are still as read."""
    if revision == 0:
        return "attribute_not_exists(#revision)", {"#revision": "revision"}, {}
    return "#revision = :revision", {"#revision": "revision"}, {":revision": revision}


def _head(item: Item) -> ChainHead:
    """The head of the connection's hash chain as the item keeps it (none: an empty chain)."""
    seq = item.get("chainSeq")
    if seq is None:
        return ChainHead()
    return ChainHead(int(seq), str(item["chainHead"]), str(item.get("chainAt") or "") or None)


def _connection(item: Item) -> Connection:
    return Connection.model_validate(public(item)).with_chain(_head(item))


def _chained(
    connection: Connection, events: list[AuditEvent]
) -> tuple[list[AuditEvent], ChainHead, str, dict[str, str], dict[str, Any]]:
    """``events`` linked after the connection's chain head as read, the new head, and the condition
    that the head is still the one read (expression, names, values)."""
    head = connection.chain_head
    linked, after = link(events, head, f"CONNECTION#{connection.connectionId}")
    if head.seq == 0:
        return linked, after, "attribute_not_exists(#chainSeq)", {"#chainSeq": "chainSeq"}, {}
    return linked, after, "#chainSeq = :chainSeq", {"#chainSeq": "chainSeq"}, {":chainSeq": head.seq}


def _head_fields(head: ChainHead) -> dict[str, Any]:
    return {"chainSeq": head.seq, "chainHead": head.hash, "chainAt": head.at}


# A create cancelled by another transaction on one of its items is written again, this often.
CREATE_ATTEMPTS = 3
CONFLICT_PAUSE_SECONDS = 0.02
# The roles that may create a request (``domain.access.MUTATING_ROLES``), as a condition.
_MAY_CHANGE = "#role IN (" + ", ".join(f":role{i}" for i in range(len(MUTATING_ROLES))) + ")"
_MUTATING = {f":role{i}": str(role) for i, role in enumerate(sorted(MUTATING_ROLES))}


def _as_member(table: Table, space_id: str, user_id: str) -> Op:
    """The check that ``user_id`` may change the space (its membership item, returned if not)."""
    return table.check(
        member_key(space_id, user_id),
        _MAY_CHANGE,
        names={"#role": "role"},
        values=_MUTATING,
        return_item=True,
    )


def _member_refusal(held: Item | None, space_id: str) -> DomainError | None:
    """Why the membership item ``held`` (None: none) failed ``_as_member``, in the routes' words."""
    role = SpaceRole(held["role"]) if held and held.get("role") else None
    return space_role_refusal(role, space_id, mutate=True)


class _Conflicted(DomainError):
    """A transaction was cancelled for a concurrent one on one of its items (TransactionConflict)."""


def _registered_as(policy: ApprovalPolicy) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition that the account's registration exists and holds ``policy``'s values of the
    fields a request copies (``COPIED_AT_CREATE``). A default value also matches its absence: a
    registration stored before policies has none of them, and an unset escalation is not stored."""
    clauses = ["attribute_exists(pk)"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for i, (name, value) in enumerate(copied_at_create(policy).items()):
        field, placeholder = f"#p{i}", f":p{i}"
        names[field] = name
        if value is None:
            clauses.append(f"attribute_not_exists({field})")
        elif value == []:
            values[placeholder] = 0
            clauses.append(f"(attribute_not_exists({field}) OR size({field}) = {placeholder})")
        elif name == "quorum" and value == 1:
            values[placeholder] = value
            clauses.append(f"(attribute_not_exists({field}) OR {field} = {placeholder})")
        else:
            values[placeholder] = value
            clauses.append(f"{field} = {placeholder}")
    return " AND ".join(clauses), names, values


def _not_found(connection_id: str) -> ConnectionNotFound:
    return ConnectionNotFound(f"connection {connection_id} does not exist")


class DynamoConnections:
    """The ``ConnectionStore`` over the state table. ``completing`` gives the same store whose
    creates also complete a record in their transaction (a keyed create's idempotency record)."""

    def __init__(self, table: Table, *, completes: Callable[[Connection], Op] | None = None) -> None:
        self.table = table
        self._completes = completes

    def completing(self, record: Callable[[Connection], Op]) -> DynamoConnections:
        """This store, each of whose creates adds ``record(connection)`` to its transaction, last:
        a write conditioned on the record (``api.idempotency``), given the connection as the
        transaction stores it. The record's condition failing refuses the create with
        ``IdempotencyInProgress``, after the other refusals and with nothing written."""
        return DynamoConnections(self.table, completes=record)

    # ---- reads -----------------------------------------------------------------------------

    def get(self, connection_id: str) -> Connection:
        return self.read(connection_id)[0]

    def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
        item = self.table.get(connection_key(connection_id))
        if item is None:
            raise _not_found(connection_id)
        return _connection(item), _secrets(item)

    def detail(self, connection_id: str) -> tuple[Connection, list[RoleAttachment], list[AuditEvent]]:
        """Read from the connection's own partition in one Query."""
        items = self.table.query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": connection_pk(connection_id)},
            ConsistentRead=True,
        )
        connection: Connection | None = None
        roles: list[RoleAttachment] = []
        history: list[AuditEvent] = []
        for item in items:
            sk = item["sk"]
            if sk == CONNECTION_SK:
                connection = _connection(item)
            elif sk.startswith(ROLE_PREFIX):
                roles.append(RoleAttachment.model_validate(public(item)))
            elif sk.startswith(EVENT_PREFIX):
                history.append(AuditEvent.model_validate(public(item)))
        if connection is None:
            raise _not_found(connection_id)
        return connection, roles, history

    def detail_page(
        self, connection_id: str, history_limit: int, history_next_token: str | None = None
    ) -> tuple[Connection, list[RoleAttachment], Page[AuditEvent]]:
        """One page of the history, oldest first, each page a bounded Query of the connection's
        partition. ``CONNECTION`` sorts just before the ``EVENT#`` range, so the first page's Query
        (``sk`` from ``CONNECTION`` through the events, one item past the page) returns the connection
        and then the oldest events; a later page's starts after the token's event, and the connection
        comes by key. ``ROLE#`` sorts after every event, so the roles (at most ten) are one more
        Query: that leaves the role items where they are stored. The token is the last event's key,
        checked on the way back in (another connection's, or any other query's, is refused)."""
        pk = connection_pk(connection_id)
        if history_next_token:
            start = decode_next_token(history_next_token, "pk", pk, field="historyNextToken")
            if not start["sk"]["S"].startswith(EVENT_PREFIX):
                raise invalid_next_token("historyNextToken")
            item = self.table.get(connection_key(connection_id))
            items, cut = self.table.query_once(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :events)",
                ExpressionAttributeValues={":pk": pk, ":events": EVENT_PREFIX},
                ExclusiveStartKey=start, Limit=history_limit + 1, ConsistentRead=True,
            )  # fmt: skip
        else:
            items, cut = self.table.query_once(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :connection AND :lastEvent",
                ExpressionAttributeValues={":pk": pk, ":connection": CONNECTION_SK,
                                           ":lastEvent": EVENT_PREFIX + "\uffff"},
                Limit=history_limit + 2, ConsistentRead=True,
            )  # fmt: skip
            item = items.pop(0) if items and items[0]["sk"] == CONNECTION_SK else None
        if item is None:
            raise _not_found(connection_id)
        events = items[:history_limit]
        token = None
        if events and (cut or len(items) > history_limit):
            token = encode_next_token({"pk": {"S": pk}, "sk": {"S": events[-1]["sk"]}})
        history = Page([AuditEvent.model_validate(public(event)) for event in events], token)
        return _connection(item), self._roles(connection_id), history

    def _roles(self, connection_id: str) -> list[RoleAttachment]:
        """The connection's recorded roles, by name (one Query of its ROLE# items)."""
        items = self.table.query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :role)",
            ExpressionAttributeValues={":pk": connection_pk(connection_id), ":role": ROLE_PREFIX},
            ConsistentRead=True,
        )
        return [RoleAttachment.model_validate(public(item)) for item in items]

    def get_role(self, connection_id: str, role_name: str) -> RoleAttachment | None:
        item = self.table.get(role_key(connection_id, role_name))
        return RoleAttachment.model_validate(public(item)) if item else None

    def live_holder(self, space_id: str, account_id: str) -> str | None:
        item = self.table.get(live_key(space_id, account_id))
        return str(item["connectionId"]) if item else None

    def list_space(
        self, space_id: str, status: ConnectionStatus | None, limit: int, next_token: str | None
    ) -> Page[Connection]:
        """Newest first, one Query on GSI1."""
        kwargs: dict[str, Any] = {
            "IndexName": "GSI1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": f"SPACE#{space_id}"},
            "ScanIndexForward": False,
        }
        if status is not None:
            kwargs["FilterExpression"] = "#status = :status"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            kwargs["ExpressionAttributeValues"][":status"] = str(status)
        items, token = self.table.page(kwargs, "gsi1pk", f"SPACE#{space_id}", limit, next_token)
        return Page([Connection.model_validate(item) for item in items], token)

    # ---- writes ----------------------------------------------------------------------------

    def create(
        self, connection: Connection, connection_token: LinkToken, *, policy: ApprovalPolicy
    ) -> Connection:
        """One transaction: two condition checks, then the writes. The requester's membership item
        must hold a role that may change the space, and the account's registration must exist with
        what ``policy`` says of the fields a request copies (``COPIED_AT_CREATE``); each returns
        its item when it fails, so the refusal needs no read. The checks come first, in the order
        the refusals take precedence (a refused caller learns nothing of the account); a store
        ``completing`` a record writes it last."""
        member = _as_member(self.table, connection.spaceId, connection.requestedBy)
        condition, names, values = _registered_as(policy)
        approver = self.table.check(
            approver_key(connection.accountId), condition, names=names, values=values, return_item=True
        )
        live = {**live_key(connection.spaceId, connection.accountId), "connectionId": connection.connectionId}
        [requested], head = link(
            [requested_event(connection)], ChainHead(), f"CONNECTION#{connection.connectionId}"
        )
        stored = connection_item(
            connection,
            connectionTokenHash=connection_token.tokenHash,
            requestDigest=request_digest(connection),
            requesterEmail=connection_token.requesterEmail,
            approvalsNeeded=connection.quorum,
            **_head_fields(head),
        )
        items = [
            member,
            approver,
            self.table.put(live, new=True),
            self.table.put(stored, new=True),
            put_token(self.table, connection_token),
            put_event(self.table, requested),
        ]
        if self._completes is not None:
            items.append(self._completes(connection))

        def refused(cancelled: Cancelled, last: bool) -> DomainError | None:
            failed = [code == "ConditionalCheckFailed" for code in cancelled.codes] + [False] * 7
            if failed[0]:
                return _member_refusal(cancelled.items[0], connection.spaceId)
            if failed[1]:
                registered = cancelled.items[1]
                if registered is None:
                    return no_administrator(connection.accountId)
                return RegisteredPolicyDiffers(
                    f"the policy of account {connection.accountId} is not the one assumed",
                    Approver.model_validate(public(registered)).policy(),
                )
            if failed[2]:
                return ConnectionAlreadyLive(
                    f"account {connection.accountId} already has a pending or verified connection "
                    f"in space {connection.spaceId}"
                )
            if failed[6]:
                # Another invocation holds the Idempotency-Key now (this one's in-progress record
                # expired and was taken over).
                return IdempotencyInProgress("a request with this Idempotency-Key is still in progress")
            if "TransactionConflict" in cancelled.codes and not last:
                return _Conflicted("")
            return None

        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                self.table.transact_seeing(items, partial(refused, last=attempt == CREATE_ATTEMPTS))
            except _Conflicted:
                # Another transaction held one of its items (the membership and the registration
                # are shared by every create of the member, of the account): it ends in
                # milliseconds, and a cancelled transaction wrote nothing.
                time.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS * attempt))
                continue
            return connection.model_copy(deep=True).with_chain(head)
        raise AssertionError("unreachable")

    def transition(
        self, connection: Connection, change: StatusChange, *, release_live: bool = True
    ) -> Connection:
        return self._transition(connection, change, release_live=release_live)

    def record_decision(self, shown: ShownRequest, verdict: Verdict, *, token_hash: str) -> Connection:
        """One transaction: the connection (pending at the shown version, digest and round; an
        approval also at the approvals ``needed`` as read, counting one down, appended to
        ``approvals``; ``change`` moves the status, its event last), the token (spent, or checked
        still active), the approver's vote of the round (``VOTE#<round>#<who>``, new: one decision
        each), the proof spent (new), the APPROVAL_RECORDED event. Which item's condition failed
        says what to raise."""
        now = isoformat(utcnow())
        connection = verdict.pending(shown)
        approval = verdict.approval
        digest = request_digest(shown)
        condition = "#version = :version AND #digest = :digest"
        names = {"#version": "version", "#digest": "requestDigest"}
        values: dict[str, Any] = {":version": shown.version, ":digest": digest}
        if verdict.round:
            condition += " AND #round = :round"
            names["#round"] = "approvalRound"
            values[":round"] = verdict.round
        fields: dict[str, Any] = {}
        append = None
        events: list[AuditEvent] = []
        if approval is not None:
            # needed 1 also passes for a connection stored before the count existed.
            if verdict.needed == 1:
                condition += " AND (attribute_not_exists(#needed) OR #needed = :needed)"
            else:
                condition += " AND #needed = :needed"
            names["#needed"] = "approvalsNeeded"
            values[":needed"] = verdict.needed
            fields["approvalsNeeded"] = verdict.needed - 1
            append = ("approvals", [approval.model_dump(exclude_none=True)])
            events.append(approval_event(connection, approval, verdict.needed - 1))
        if verdict.consume:
            token = retire_token(self.table, token_hash, TokenState.USED, require_active=True)
        else:
            token = refresh_token(self.table, token_hash, {}, active=True)  # a ConditionCheck
        vote = {
            **vote_key(shown.connectionId, verdict.round, verdict.who), "connectionId": shown.connectionId,
            "at": now, "decision": "approve" if approval is not None else "reject",
        }  # fmt: skip
        extra: list[Op] = [token, self.table.put(vote, new=True)]
        if verdict.proof_signature:
            spent = {**proof_key(verdict.proof_signature), "connectionId": shown.connectionId, "at": now,
                     "ttl": int(utcnow().timestamp()) + PROOF_RETENTION_SECONDS}  # fmt: skip
            extra.append(self.table.put(spent, new=True))

        def refused(codes: list[str]) -> DomainError:
            failed = [code == "ConditionalCheckFailed" for code in codes] + [False] * 4
            if failed[2]:
                return ApproverAlreadyDecided("you have decided this request already: one decision each")
            if verdict.proof_signature and failed[3]:
                return AccountProofRefused("this account proof was used already: make a new one")
            if (failed[0] or "TransactionConflict" in codes) and not failed[1]:
                item = self.table.get(connection_key(shown.connectionId))
                if (
                    item is not None
                    and item.get("status") == str(ConnectionStatus.PENDING_APPROVAL)
                    and int(item.get("version", 0)) == shown.version
                    and item.get("requestDigest") == digest
                ):
                    return ApprovalsMoved("another decision was recorded meanwhile: read again")
            return ConnectionAlreadyDecided(f"connection {shown.connectionId} changed before it was decided")

        if verdict.change is None:
            assert events, "a decision that moves no status is an approval"
            self._keeping_status(
                connection, events[0], extra, fields, counters={"revision": (1, 0)}, append=append,
                guard=(condition, names, values), refused=refused,
            )  # fmt: skip
            return self.get(shown.connectionId)
        return self._transition(
            connection, verdict.change, extra=extra, events_before=events, fields=fields,
            counters={"revision": (1, 0)}, append=append, guard=(condition, names, values), refused=refused,
        )  # fmt: skip

    def _transition(
        self,
        connection: Connection,
        change: StatusChange,
        *,
        release_live: bool = True,
        expect: dict[str, Any] | None = None,
        extra: list[Op] | None = None,
        events_before: list[AuditEvent] | None = None,
        fields: dict[str, Any] | None = None,
        counters: dict[str, tuple[int, int]] | None = None,
        append: tuple[str, list[Any]] | None = None,
        guard: tuple[str, dict[str, str], dict[str, Any]] | None = None,
        refused: Callable[[list[str]], DomainError] | None = None,
    ) -> Connection:
        """The conditional status change, on the status and version read (and ``expect``ed
        attributes, and ``guard``), with its event (after ``events_before``, in the history's
        order), the live lock's release and ``extra`` operations; ``fields``, ``counters`` and
        ``append`` (a list attribute and what to add to its end) change the connection too."""
        source, target = connection.status, change.target
        if not can_transition(source, target):
            raise ConnectionAlreadyDecided(f"a {source} connection cannot become {target}")
        before = events_before or []
        now = isoformat(utcnow())
        if before and now <= before[-1].at:
            # The status change is the last of the write's events in the history's order.
            now = isoformat(datetime.fromisoformat(before[-1].at) + timedelta(milliseconds=1))
        version = connection.version + 1
        updates: dict[str, Any] = {
            "status": str(target), "updatedAt": now, "version": version, "gsi3pk": f"STATUS#{target}",
            **change.fields(), **(fields or {}),
        }  # fmt: skip
        names = {"#status": "status", "#version": "version"}
        values: dict[str, Any] = {":expected": str(source), ":expectedVersion": connection.version}
        condition = "#status = :expected AND #version = :expectedVersion"
        for i, (name, value) in enumerate((expect or {}).items()):
            names[f"#e{i}"] = name
            values[f":e{i}"] = value
            condition += f" AND #e{i} = :e{i}"
        if guard is not None:
            condition += f" AND {guard[0]}"
            names.update(guard[1])
            values.update(guard[2])
        linked, head, chained, chain_names, chain_values = _chained(
            connection, [*before, status_event(connection, change, version, now)]
        )
        condition += f" AND {chained}"
        names.update(chain_names)
        values.update(chain_values)
        updates.update(_head_fields(head))
        update = self.table.update(
            connection_key(connection.connectionId), set_fields=updates, condition=condition, names=names,
            values=values, counters=counters, append=append,
        )  # fmt: skip
        items = [update, *(extra or []), *(put_event(self.table, event) for event in linked)]
        if release_live and source in LIVE_STATUSES and target not in LIVE_STATUSES:
            items.append(self.table.delete(
                live_key(connection.spaceId, connection.accountId),
                condition="connectionId = :id", values={":id": connection.connectionId},
            ))  # fmt: skip
        self.table.transact(items, refused or (lambda _: ConnectionAlreadyDecided(
            f"connection {connection.connectionId} changed before it could become {target}"
        )))  # fmt: skip
        connection.with_chain(head)
        updated = connection.model_dump()
        updated.update({k: v for k, v in updates.items() if k in Connection.model_fields}, status=target)
        if append is not None:
            updated[append[0]] = [*updated.get(append[0], []), *append[1]]
        return Connection.model_validate(updated).with_chain(head)

    def replace_links(self, connection: Connection, change: LinkChange, *, revision: int) -> None:
        """The connection (its status and ``revision`` as read, past the limit if any) with the live
        links, the addresses told, the policy's snapshot, the task token's and CSRF secret's copies,
        a new revision; the tokens issued, retired (each still active) and refreshed (the new task
        token); the connection token's copies; the events."""
        fields: dict[str, Any] = {"links": change.links, "notified": change.notified}
        fields["revision"] = revision + 1
        if change.verify_base_url:
            fields["verifyBaseUrl"] = change.verify_base_url
        if change.task_token is not None:
            fields["taskToken"] = change.task_token
        if change.csrf_secret is not None:
            fields["csrfSecret"] = change.csrf_secret
        if change.policy is not None:
            fields.update(
                policy=change.policy.model_dump(), quorum=change.policy.quorum, approvals=[],
                approvalsNeeded=change.policy.quorum, approvalRound=change.round,
            )  # fmt: skip
        if change.escalated is not None:
            fields["escalated"] = change.escalated
        # The chain's head after this write, copied onto every live token: a quorum-1 decision
        # chains its events from it.
        _, after, *_ = _chained(connection, change.events)
        copies = {"chainSeq": after.seq, "chainHead": after.hash, "chainAt": after.at}
        extra: list[Op] = [put_token(self.table, token.model_copy(update=copies)) for token in change.issue]
        extra += [retire_token(self.table, old, change.retire_as, require_active=True)
                  for old in change.retire]  # fmt: skip
        task = {"taskToken": change.task_token} if change.task_token is not None else {}
        extra += [refresh_token(self.table, kept, {**task, **copies}, active=True) for kept in change.refresh]
        if change.connection_token:
            hash_, held = change.connection_token
            extra.append(refresh_token(self.table, hash_, {**held, **copies}))
        condition, names, values = _at_revision(revision)
        counters: dict[str, tuple[int, int]] = {}
        if change.issue:
            # Every change that sends links counts once, with the time of the last.
            fields["lastLinkAt"] = change.at
            counters["linkCount"] = (1, 0)
        limit = change.limit
        refusal: Callable[[], DomainError] | None = None
        if limit is not None:
            at = datetime.fromisoformat(change.at)
            condition += (
                " AND (attribute_not_exists(#linkCount) OR #linkCount < :maxLinks) AND "
                "(attribute_not_exists(#lastLinkAt) OR #lastLinkAt <= :lastLinkBy)"
            )
            names = {**names, "#linkCount": "linkCount", "#lastLinkAt": "lastLinkAt"}
            values = {**values, ":maxLinks": limit.max_links, ":lastLinkBy": isoformat(at - limit.interval)}

            def refusal() -> DomainError:
                """Which condition refused the links, from the connection as it now is."""
                item = self.table.get(connection_key(connection.connectionId))
                if item is not None and item.get("status") == str(connection.status):
                    last = item.get("lastLinkAt")
                    sent = int(item.get("linkCount", 0))
                    refused = limit.refusal(sent, datetime.fromisoformat(str(last)) if last else None, at)
                    if refused is not None:
                        return refused
                return ConnectionAlreadyDecided(f"connection {connection.connectionId} changed meanwhile")

        events = change.events
        self._keeping_status(
            connection, events[0], extra, fields, counters=counters or None, guard=(condition, names, values),
            refusal=refusal, more_events=events[1:],
        )  # fmt: skip

    def rotate_connection_token(
        self, connection: Connection, token: LinkToken, *, secrets: ConnectionSecrets, actor: str
    ) -> None:
        replaces = secrets.connection_token_hash
        if not replaces:
            raise ConnectionAlreadyDecided(f"connection {connection.connectionId} has no connection token")
        # The revision as read too: a link issued since refreshed the old token's copies, which the
        # new token must carry (the caller reads again and retries).
        at_revision, names, values = _at_revision(secrets.revision)
        [replaced], head, chained, chain_names, chain_values = _chained(
            connection, [token_replaced_event(connection, actor)]
        )
        guard = self.table.update(
            connection_key(connection.connectionId),
            set_fields={"connectionTokenHash": token.tokenHash, **_head_fields(head)},
            condition=f"#status = :pending AND #held = :held AND {at_revision} AND {chained}",
            names={**names, **chain_names, "#status": "status", "#held": "connectionTokenHash"},
            values={**values, **chain_values, ":pending": str(ConnectionStatus.PENDING_APPROVAL),
                    ":held": replaces},
        )  # fmt: skip
        items = [
            _as_member(self.table, connection.spaceId, actor),
            guard,
            put_event(self.table, replaced),
            put_token(self.table, token),
            retire_token(self.table, replaces, TokenState.REPLACED, require_active=True),
        ]

        def refused(cancelled: Cancelled) -> DomainError:
            refusal = None
            if cancelled.codes[:1] == ["ConditionalCheckFailed"]:
                refusal = _member_refusal(cancelled.items[0], connection.spaceId)
            return refusal or ConnectionAlreadyDecided(
                f"connection {connection.connectionId} changed before its connection token could be replaced"
            )

        self.table.transact_seeing(items, refused)
        connection.with_chain(head)

    def attach_role(self, connection: Connection, attachment: RoleAttachment, *, actor: str) -> None:
        """A role recorded already is replaced; a new one counts (``roleCount`` on the connection,
        kept by attach and detach) and the transaction requires the count below ``MAX_ROLES``, so
        that concurrent attaches cannot pass it. Raises ``TooManyRoles``, ``ConnectionAlreadyDecided``."""
        role = {
            **role_key(connection.connectionId, attachment.roleName),
            **attachment.model_dump(exclude_none=True),
        }
        event = role_event(connection, attachment, actor)
        recorded = self._recorded_role_names(connection.connectionId)
        if attachment.roleName in recorded:
            self._keeping_status(connection, event, [self.table.put(role, existing=True)])
            return
        if len(recorded) >= MAX_ROLES:
            raise too_many_roles(attachment.roleName)
        guard = (
            "(attribute_not_exists(#roleCount) OR #roleCount < :maxRoles)",
            {"#roleCount": "roleCount"},
            {":maxRoles": MAX_ROLES},
        )

        def refusal() -> DomainError:
            item = self.table.get(connection_key(connection.connectionId))
            if item is not None and item.get("status") == str(connection.status):
                if int(item.get("roleCount", 0)) >= MAX_ROLES:
                    return too_many_roles(attachment.roleName)
            return ConnectionAlreadyDecided(f"connection {connection.connectionId} changed meanwhile")

        # A connection stored before the count existed counts from the roles it has.
        counters = {"roleCount": (1, len(recorded))}
        self._keeping_status(connection, event, [self.table.put(role, new=True)], counters=counters,
                             guard=guard, refusal=refusal)  # fmt: skip

    def pending_for_account(self, account_id: str) -> list[Connection]:
        """One Query of the account's partition of GSI2, filtered on the status, every page."""
        items = self.table.query_all(
            IndexName="GSI2",
            KeyConditionExpression="gsi2pk = :pk",
            FilterExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":pk": f"ACCOUNT#{account_id}",
                ":pending": str(ConnectionStatus.PENDING_APPROVAL),
            },
        )
        return [Connection.model_validate(public(item)) for item in items]

    def detach_role(self, connection: Connection, role: RoleAttachment, *, actor: str) -> None:
        event = connection_event(connection, EventType.ROLE_DETACHED, actor, role.roleArn)
        counters = {"roleCount": (-1, len(self._recorded_role_names(connection.connectionId)))}
        self._keeping_status(
            connection, event, [self.table.delete(role_key(connection.connectionId, role.roleName))],
            counters=counters,
        )  # fmt: skip

    def _recorded_role_names(self, connection_id: str) -> set[str]:
        return {role.roleName for role in self._roles(connection_id)}

    def _keeping_status(
        self,
        connection: Connection,
        event: AuditEvent,
        extra: list[Op],
        fields: dict[str, Any] | None = None,
        *,
        counters: dict[str, tuple[int, int]] | None = None,
        append: tuple[str, list[Any]] | None = None,
        guard: tuple[str, dict[str, str], dict[str, Any]] | None = None,
        refusal: Callable[[], DomainError] | None = None,
        refused: Callable[[list[str]], DomainError] | None = None,
        more_events: list[AuditEvent] | None = None,
    ) -> None:
        """Append ``event`` (and ``more_events``) with ``extra`` in one transaction conditional on
        the connection's status; ``fields``, ``counters`` and ``append`` also change the connection
        under that same condition (one transaction may touch an item once: the guard itself becomes
        the update). ``guard`` adds a condition on the connection item (its expression, names and
        values); when the connection's condition fails, ``refusal()`` says why (default: it changed
        status); ``refused(codes)`` replaces that whole mapping."""
        condition, names, values = (
            "#status = :status",
            {"#status": "status"},
            {":status": str(connection.status)},
        )
        if guard is not None:
            condition = f"{condition} AND {guard[0]}"
            names, values = {**names, **guard[1]}, {**values, **guard[2]}
        linked, head, chained, chain_names, chain_values = _chained(connection, [event, *(more_events or [])])
        condition = f"{condition} AND {chained}"
        names, values = {**names, **chain_names}, {**values, **chain_values}
        update = self.table.update(
            connection_key(connection.connectionId), set_fields={**(fields or {}), **_head_fields(head)},
            condition=condition, names=names, values=values, counters=counters, append=append,
        )  # fmt: skip
        items = [update, *extra, *(put_event(self.table, linked_event) for linked_event in linked)]

        def mapped(codes: list[str]) -> DomainError:
            if refused is not None:
                return refused(codes)
            if refusal is not None and codes[:1] == ["ConditionalCheckFailed"]:
                return refusal()
            return ConnectionAlreadyDecided(
                f"connection {connection.connectionId} is no longer {connection.status}"
            )

        self.table.transact(items, mapped)
        # The caller's connection is now the one written: its next write chains from here.
        connection.with_chain(head)
