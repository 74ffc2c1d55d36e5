"""In-memory fakes of the ports in ``account_connections.ports``, one per port, over dicts.

Each store refuses exactly what its DynamoDB adapter's conditional writes refuse (see
``adapters/dynamodb/``), and a refused write changes nothing, so that a use case tested against
the fakes behaves as it does against the table; ``tests/integration/test_store_contract.py``
runs the same scenarios against both to prove it. Each fake also keeps what a test observes:
``transitions`` and ``events`` of the stores, ``emails``, the workflow's ``starts``/``succeeded``/
``failed``, the verifier's ``opened``.

Every value handed out is a copy: a test cannot change stored state by editing what it read.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

from account_connections.domain.access import space_role_refusal
from account_connections.domain.audit import AuditEvent, EventType, chain_of
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
from account_connections.domain.digest import Digest
from account_connections.domain.errors import (
    AccountProofRefused,
    ApprovalsMoved,
    ApproverAlreadyDecided,
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    DependencyUnavailable,
    DigestRaced,
    InvalidRequest,
    RegistryConflict,
    RoleCheckFailed,
    SpaceNotFound,
    TaskAlreadyClosed,
)
from account_connections.domain.limits import MAX_ROLES, too_many_roles
from account_connections.domain.policy import ApprovalPolicy, RegisteredPolicyDiffers, copied_at_create
from account_connections.domain.proof import AccountProof, CallerIdentity
from account_connections.domain.registry import (
    AddressSubscription,
    Approver,
    Member,
    Space,
    SpaceRole,
    no_administrator,
)
from account_connections.domain.statuses import LIVE_STATUSES, ConnectionStatus, can_transition
from account_connections.domain.tokens import LinkToken, TokenState
from account_connections.ports import (
    AccountRoles,
    AuditLog,
    ConnectionQuery,
    ConnectionStore,
    EventQuery,
    LinkChange,
    Mailer,
    Page,
    ProofVerifier,
    RegistryStore,
    RoleVerifier,
    Subscriptions,
    TokenStore,
    Verdict,
    Workflow,
)

T = TypeVar("T")


class DuplicateItem(Exception):
    """A write of an item that must be new found one stored under its key: the adapter lets
    DynamoDB's ``TransactionCanceledException`` propagate there (no domain error)."""


# ---- paging ------------------------------------------------------------------------------------


def _page(
    items: list[T], limit: int, next_token: str | None, scope: str, field: str = "nextToken"
) -> Page[T]:
    """One page of ``items`` and an opaque token for the next, valid only for ``scope`` (the query):
    a foreign token is refused (naming ``field``) as ``Table.page`` refuses one."""
    start = 0
    if next_token:
        try:
            padded = next_token + "=" * (-len(next_token) % 4)
            plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            if not isinstance(plain, dict) or plain.get("scope") != scope:
                raise ValueError(next_token)
            start = int(plain["start"])
        except (ValueError, KeyError, TypeError, UnicodeError, RecursionError) as exc:
            raise InvalidRequest(
                f"{field} is not valid for this query",
                errors=[{"field": field, "message": "not a token of this query"}],
            ) from exc
    end = start + limit
    token = None
    if end < len(items):
        raw = json.dumps({"scope": scope, "start": end}, separators=(",", ":")).encode()
        token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return Page(items[start:end], token)


def _sort_key(connection: Connection) -> str:
    """The indexes' sort key of a connection item: newest first means this, descending."""
    return f"{connection.createdAt}#{connection.connectionId}"


def _between(sort: str, low: str | None, high: str | None) -> bool:
    """``range_query``'s bounds: from ``low`` on, up to every key that starts with ``high``."""
    return (low is None or sort >= low) and (high is None or sort <= high + "\uffff")


# ---- tokens ------------------------------------------------------------------------------------


class InMemoryTokens:
    """The ``TokenStore``: link and connection tokens by hash. The connection store writes them
    (in its transactions, as the adapter does); tests read ``stored`` or ``get``."""

    def __init__(self) -> None:
        self.stored: dict[str, LinkToken] = {}

    def get(self, token_hash: str) -> LinkToken | None:
        token = self.stored.get(token_hash)
        return token.model_copy(deep=True) if token else None


# ---- connections -------------------------------------------------------------------------------


@dataclass
class _Record:
    """A connection item: the connection and its internal attributes."""

    connection: Connection
    secrets: ConnectionSecrets
    roles: dict[str, RoleAttachment] = field(default_factory=dict)
    # The links issued and when the last one was (None: not counted yet, as an item stored before
    # the count existed).
    link_count: int | None = None
    last_link_at: str | None = None
    # The approvers' decisions, by (round, who): one each.
    votes: set[tuple[int, str]] = field(default_factory=set)


class InMemoryConnections:
    """The ``ConnectionStore`` over dicts, refusing what ``DynamoConnections`` refuses.

    ``InMemoryConnections(*connections)`` starts with those connections stored (a live one holding
    its account's lock); ``seed`` stores one with secrets or roles. ``events`` is every audit event
    the writes appended, in order; ``transitions`` the status each successful change reached.
    """

    def __init__(
        self, *connections: Connection, tokens: InMemoryTokens | None = None,
        registry: InMemoryRegistry | None = None,
    ) -> None:  # fmt: skip
        self.tokens = tokens if tokens is not None else InMemoryTokens()
        # Whose memberships and registrations a create checks, as the table's items are (none: an
        # empty registry, which refuses every create).
        self.registry = registry if registry is not None else InMemoryRegistry()
        self.records: dict[str, _Record] = {}
        self.live: dict[tuple[str, str], str] = {}
        self.events: list[AuditEvent] = []
        self.transitions: list[ConnectionStatus] = []
        # Account proofs spent on decisions, by signature: each is good once.
        self.spent_proofs: set[str] = set()
        for connection in connections:
            self.seed(connection)

    # ---- arranging (tests only) ------------------------------------------------------------

    def seed(
        self,
        connection: Connection,
        secrets: ConnectionSecrets | None = None,
        roles: list[RoleAttachment] | None = None,
        *,
        live: bool | None = None,
    ) -> Connection:
        """Store ``connection`` as a test's given state (no event). It holds its account's lock when
        ``live`` (default: when its status is live); its digest is computed unless ``secrets`` has one."""
        secrets = secrets or ConnectionSecrets()
        if secrets.request_digest is None:
            secrets = replace(secrets, request_digest=request_digest(connection))
        record = _Record(connection.model_copy(deep=True), secrets)
        record.roles = {role.roleName: role.model_copy() for role in roles or []}
        self.records[connection.connectionId] = record
        if live if live is not None else connection.status in LIVE_STATUSES:
            self.live[(connection.spaceId, connection.accountId)] = connection.connectionId
        return connection

    def secrets(self, connection_id: str) -> ConnectionSecrets:
        return self.records[connection_id].secrets

    # ---- reads -----------------------------------------------------------------------------

    def get(self, connection_id: str) -> Connection:
        return self.read(connection_id)[0]

    def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
        record = self._record(connection_id)
        return record.connection.model_copy(deep=True), record.secrets

    def detail(self, connection_id: str) -> tuple[Connection, list[RoleAttachment], list[AuditEvent]]:
        """As one Query of the connection's partition returns it: roles by name, events by time."""
        record = self._record(connection_id)
        roles = [record.roles[name].model_copy() for name in sorted(record.roles)]
        history = sorted(
            (event.model_copy() for event in self.events if event.connectionId == connection_id),
            key=lambda event: f"{event.at}#{event.eventId}",
        )
        return record.connection.model_copy(deep=True), roles, history

    def detail_page(
        self, connection_id: str, history_limit: int, history_next_token: str | None = None
    ) -> tuple[Connection, list[RoleAttachment], Page[AuditEvent]]:
        """``detail``, its history a page at a time; a token of another connection is refused."""
        scope = f"history:{connection_id}"
        if history_next_token:  # the adapter checks the token before it reads
            _page([], 1, history_next_token, scope, "historyNextToken")
        connection, roles, history = self.detail(connection_id)
        return connection, roles, _page(history, history_limit, history_next_token, scope, "historyNextToken")

    def get_role(self, connection_id: str, role_name: str) -> RoleAttachment | None:
        record = self.records.get(connection_id)
        role = record.roles.get(role_name) if record else None
        return role.model_copy() if role else None

    def live_holder(self, space_id: str, account_id: str) -> str | None:
        return self.live.get((space_id, account_id))

    def list_space(
        self, space_id: str, status: ConnectionStatus | None, limit: int, next_token: str | None
    ) -> Page[Connection]:
        chosen = [
            record.connection.model_copy(deep=True)
            for record in self.records.values()
            if record.connection.spaceId == space_id
            and (status is None or record.connection.status == status)
        ]
        chosen.sort(key=_sort_key, reverse=True)
        return _page(chosen, limit, next_token, f"space:{space_id}:{status}")

    def stored(self) -> list[Connection]:
        """Every connection (the auditors' fake queries these)."""
        return [record.connection.model_copy(deep=True) for record in self.records.values()]

    # ---- writes ----------------------------------------------------------------------------

    def create(
        self, connection: Connection, connection_token: LinkToken, *, policy: ApprovalPolicy
    ) -> Connection:
        """As the adapter's one transaction, in its precedence: refuses ``NotAuthorized`` unless the
        requester's role in the space may change it, ``ApproverNotRegistered`` without a
        registration, ``RegisteredPolicyDiffers`` (with the registered policy) when it differs
        from ``policy`` in what a request copies, ``ConnectionAlreadyLive`` while the account has
        a live lock in the space."""
        role = self.registry.get_member_role(connection.spaceId, connection.requestedBy)
        refusal = space_role_refusal(role, connection.spaceId, mutate=True)
        if refusal is not None:
            raise refusal
        registered = self.registry.get_approver(connection.accountId)
        if registered is None:
            raise no_administrator(connection.accountId)
        if copied_at_create(registered) != copied_at_create(policy):
            raise RegisteredPolicyDiffers(
                f"the policy of account {connection.accountId} is not the one assumed", registered.policy()
            )
        lock = (connection.spaceId, connection.accountId)
        if lock in self.live:
            raise ConnectionAlreadyLive(
                f"account {connection.accountId} already has a pending or verified connection "
                f"in space {connection.spaceId}"
            )
        if connection.connectionId in self.records or connection_token.tokenHash in self.tokens.stored:
            raise DuplicateItem(connection.connectionId)
        secrets = ConnectionSecrets(
            connection_token_hash=connection_token.tokenHash, request_digest=request_digest(connection),
            requester_email=connection_token.requesterEmail, approvals_needed=connection.quorum,
        )  # fmt: skip
        self.live[lock] = connection.connectionId
        record = _Record(connection.model_copy(deep=True).with_chain(ChainHead()), secrets)
        self.records[connection.connectionId] = record
        self.tokens.stored[connection_token.tokenHash] = connection_token.model_copy(deep=True)
        self._append(record, [requested_event(connection)])
        return record.connection.model_copy(deep=True)

    def transition(
        self, connection: Connection, change: StatusChange, *, release_live: bool = True
    ) -> Connection:
        return self._transition(connection, change, release_live=release_live)

    def record_decision(self, shown: ShownRequest, verdict: Verdict, *, token_hash: str) -> Connection:
        """As the adapter's one transaction: only while the token is ``ACTIVE`` (spent when
        ``consume``), the approver has no vote in the round, the proof is unspent, and the
        connection is pending at the shown version, digest and round (an approval: with
        ``needed`` approvals still needed); the vote, the proof, the approval and the change then
        all happen, else nothing does."""
        record = self.records.get(shown.connectionId)
        token = self.tokens.stored.get(token_hash)
        if record is not None and (verdict.round, verdict.who) in record.votes:
            raise ApproverAlreadyDecided("you have decided this request already: one decision each")
        if verdict.proof_signature is not None and verdict.proof_signature in self.spent_proofs:
            raise AccountProofRefused("this account proof was used already: make a new one")
        active = token is not None and token.state == TokenState.ACTIVE
        current = (
            record is not None
            and record.connection.status == ConnectionStatus.PENDING_APPROVAL
            and record.connection.version == shown.version
            and record.secrets.request_digest == request_digest(shown)
        )
        if not active or not current or record is None:
            raise ConnectionAlreadyDecided(f"connection {shown.connectionId} changed before it was decided")
        needed = record.secrets.approvals_needed
        if (
            (verdict.round and record.secrets.approval_round != verdict.round)
            or (verdict.approval is not None and (needed if needed is not None else 1) != verdict.needed)
            or record.connection.chain_head.seq != verdict.chain.seq
        ):
            raise ApprovalsMoved("another decision was recorded meanwhile: read again")
        assert token is not None
        now_events: list[AuditEvent] = []
        approvals = list(record.connection.approvals)
        pending = verdict.pending(shown)
        if verdict.approval is not None:
            now_events.append(approval_event(pending, verdict.approval, verdict.needed - 1))
            approvals.append(verdict.approval.model_copy())
        if verdict.change is not None:
            decided = self._transition(pending, verdict.change, events_before=now_events)
        else:
            self._append(record, now_events)
            decided = record.connection
        record = self.records[shown.connectionId]
        record.connection = record.connection.model_copy(update={"approvals": approvals})
        if verdict.approval is not None:
            record.secrets = replace(record.secrets, approvals_needed=verdict.needed - 1)
        record.secrets = replace(record.secrets, revision=record.secrets.revision + 1)
        record.votes.add((verdict.round, verdict.who))
        if verdict.proof_signature is not None:
            self.spent_proofs.add(verdict.proof_signature)
        if verdict.consume:
            self.tokens.stored[token_hash] = token.model_copy(
                update={"state": TokenState.USED, "taskToken": None, "csrfSecret": None}
            )
        return decided.model_copy(update={"approvals": approvals}, deep=True)

    def _transition(
        self,
        connection: Connection,
        change: StatusChange,
        *,
        release_live: bool = True,
        digest: str | None = None,
        also_requires: bool = True,
        events_before: list[AuditEvent] | None = None,
    ) -> Connection:
        source, target = connection.status, change.target
        if not can_transition(source, target):
            raise ConnectionAlreadyDecided(f"a {source} connection cannot become {target}")
        record = self.records.get(connection.connectionId)
        lock = (connection.spaceId, connection.accountId)
        release = release_live and source in LIVE_STATUSES and target not in LIVE_STATUSES
        if (
            record is None
            or record.connection.status != source
            or record.connection.version != connection.version
            or (digest is not None and record.secrets.request_digest != digest)
            # The adapter deletes the lock on the condition that it is this connection's.
            or (release and self.live.get(lock) != connection.connectionId)
            # Its hash chain's head as read: another write of the chain came first.
            or record.connection.chain_head.seq != connection.chain_head.seq
            or not also_requires
        ):
            raise ConnectionAlreadyDecided(
                f"connection {connection.connectionId} changed before it could become {target}"
            )
        now = isoformat(utcnow())
        before = events_before or []
        if before and now <= before[-1].at:
            now = isoformat(datetime.fromisoformat(before[-1].at) + timedelta(milliseconds=1))
        version = connection.version + 1
        fields: dict[str, Any] = {"status": target, "updatedAt": now, "version": version, **change.fields()}
        record.connection = record.connection.model_copy(update=fields)
        if release:
            del self.live[lock]
        self._append(record, [*before, status_event(connection, change, version, now)], connection)
        self.transitions.append(target)
        return connection.model_copy(update=fields).with_chain(record.connection.chain_head)

    def replace_links(self, connection: Connection, change: LinkChange, *, revision: int) -> None:
        """While the connection keeps its status and ``revision``: the tokens issued, retired and
        refreshed (each retired or refreshed one still ``ACTIVE``), the connection's links, policy
        and copies, the connection token's copies, the events; counted as one link with its time.
        With a ``limit`` (a resend), refuses ``TooManyLinks`` past it, as the adapter's condition
        does (a missing count passes)."""
        record = self._keeping_status(connection)
        if record.secrets.revision != revision:
            raise self._lost(connection)
        if change.limit is not None:
            last = datetime.fromisoformat(record.last_link_at) if record.last_link_at else None
            refused = change.limit.refusal(record.link_count or 0, last, datetime.fromisoformat(change.at))
            if refused is not None:
                raise refused
        stored = self.tokens.stored
        if (
            any(token.tokenHash in stored for token in change.issue)
            or any(old not in stored or stored[old].state != TokenState.ACTIVE for old in change.retire)
            or any(kept not in stored or stored[kept].state != TokenState.ACTIVE for kept in change.refresh)
            or (change.connection_token is not None and change.connection_token[0] not in stored)
        ):
            raise self._lost(connection)
        secrets = replace(record.secrets, links=dict(change.links), notified=tuple(change.notified),
                          revision=revision + 1)  # fmt: skip
        if change.verify_base_url:
            secrets = replace(secrets, verify_base_url=change.verify_base_url)
        if change.task_token is not None:
            secrets = replace(secrets, task_token=change.task_token)
        if change.csrf_secret is not None:
            secrets = replace(secrets, csrf_secret=change.csrf_secret)
        if change.policy is not None:
            quorum = change.policy.quorum
            secrets = replace(secrets, policy=change.policy.model_copy(deep=True), approvals_needed=quorum,
                              approval_round=change.round or 0)  # fmt: skip
            record.connection = record.connection.model_copy(
                update={"quorum": change.policy.quorum, "approvals": []}
            )
        if change.escalated is not None:
            secrets = replace(secrets, escalated=change.escalated)
        record.secrets = secrets
        if change.issue:
            record.link_count, record.last_link_at = (record.link_count or 0) + 1, change.at
        for token in change.issue:
            stored[token.tokenHash] = token.model_copy(deep=True)
        for old in change.retire:
            stored[old] = stored[old].model_copy(
                update={"state": change.retire_as, "taskToken": None, "csrfSecret": None}
            )
        if change.task_token is not None:
            for kept in change.refresh:
                stored[kept] = stored[kept].model_copy(update={"taskToken": change.task_token})
        if change.connection_token is not None:
            held_hash, copies = change.connection_token
            stored[held_hash] = stored[held_hash].model_copy(update=copies)
        self._append(record, [event.model_copy() for event in change.events], connection)
        head = record.connection.chain_head
        copies = {"chainSeq": head.seq, "chainHead": head.hash, "chainAt": head.at}
        for live in [*(token.tokenHash for token in change.issue), *change.refresh]:
            stored[live] = stored[live].model_copy(update=copies)
        if change.connection_token is not None:
            stored[change.connection_token[0]] = stored[change.connection_token[0]].model_copy(update=copies)

    def rotate_connection_token(
        self, connection: Connection, token: LinkToken, *, secrets: ConnectionSecrets, actor: str
    ) -> None:
        """Only while the connection is pending and still holds the connection token and the link of
        ``secrets``, the old token still ``ACTIVE``: the new token in, the old one ``REPLACED``
        (copies dropped), the connection pointed at the new one; first of all, only while ``actor``
        may change the space (``NotAuthorized``)."""
        refusal = space_role_refusal(
            self.registry.get_member_role(connection.spaceId, actor), connection.spaceId, mutate=True
        )
        if refusal is not None:
            raise refusal
        record = self.records.get(connection.connectionId)
        replaces = secrets.connection_token_hash
        old = self.tokens.stored.get(replaces) if replaces else None
        if (
            record is None
            or record.connection.status != ConnectionStatus.PENDING_APPROVAL
            or record.secrets.connection_token_hash != replaces
            or record.secrets.revision != secrets.revision
            or record.connection.chain_head.seq != connection.chain_head.seq
            or replaces is None
            or old is None
            or old.state != TokenState.ACTIVE
            or token.tokenHash in self.tokens.stored
        ):
            raise self._lost(connection)
        self.tokens.stored[token.tokenHash] = token.model_copy(deep=True)
        self.tokens.stored[replaces] = old.model_copy(
            update={"state": TokenState.REPLACED, "taskToken": None, "csrfSecret": None}
        )
        record.secrets = replace(record.secrets, connection_token_hash=token.tokenHash)
        self._append(record, [token_replaced_event(connection, actor)], connection)

    def pending_for_account(self, account_id: str) -> list[Connection]:
        """As the GSI2 Query returns them: oldest first."""
        chosen = [
            record.connection.model_copy(deep=True)
            for record in self.records.values()
            if record.connection.accountId == account_id
            and record.connection.status == ConnectionStatus.PENDING_APPROVAL
        ]
        return sorted(chosen, key=_sort_key)

    def attach_role(self, connection: Connection, attachment: RoleAttachment, *, actor: str) -> None:
        """Records the result (replacing one of the same name) while the connection keeps its status;
        refuses ``TooManyRoles`` for a new name once ``MAX_ROLES`` are recorded."""
        record = self._keeping_status(connection)
        if attachment.roleName not in record.roles and len(record.roles) >= MAX_ROLES:
            raise too_many_roles(attachment.roleName)
        record.roles[attachment.roleName] = attachment.model_copy()
        self._append(record, [role_event(connection, attachment, actor)], connection)

    def detach_role(self, connection: Connection, role: RoleAttachment, *, actor: str) -> None:
        """Only a recorded role, while the connection keeps its status."""
        record = self._keeping_status(connection)
        if role.roleName not in record.roles:
            raise self._lost(connection)
        del record.roles[role.roleName]
        self._append(
            record, [connection_event(connection, EventType.ROLE_DETACHED, actor, role.roleArn)], connection
        )

    # ---- helpers ---------------------------------------------------------------------------

    def _record(self, connection_id: str) -> _Record:
        record = self.records.get(connection_id)
        if record is None:
            raise ConnectionNotFound(f"connection {connection_id} does not exist")
        return record

    def _keeping_status(self, connection: Connection) -> _Record:
        """The stored record, if it still has ``connection``'s status and chain head (the adapter's
        guard)."""
        record = self.records.get(connection.connectionId)
        if (
            record is None
            or record.connection.status != connection.status
            or record.connection.chain_head.seq != connection.chain_head.seq
        ):
            raise self._lost(connection)
        return record

    def _append(self, record: _Record, events: list[AuditEvent], caller: Connection | None = None) -> None:
        """``events`` linked after the record's chain head, which moves to the last of them (on the
        ``caller``'s connection too, as the adapter does: its next write chains from there)."""
        chain = f"CONNECTION#{record.connection.connectionId}"
        linked, head = link(events, record.connection.chain_head, chain)
        self.events.extend(linked)
        record.connection.with_chain(head)
        if caller is not None:
            caller.with_chain(head)

    @staticmethod
    def _lost(connection: Connection) -> ConnectionAlreadyDecided:
        return ConnectionAlreadyDecided(
            f"connection {connection.connectionId} is no longer {connection.status}"
        )


# ---- the registry ------------------------------------------------------------------------------


class InMemoryRegistry:
    """The ``RegistryStore``: spaces, members and administrators, each change with its event."""

    def __init__(self) -> None:
        self.spaces: dict[str, Space] = {}
        self.members: dict[tuple[str, str], Member] = {}
        self.approvers: dict[str, Approver] = {}
        # Each administrator's address: its subscription and accounts, at its version.
        self.addresses: dict[str, AddressSubscription] = {}
        self.events: list[AuditEvent] = []
        # Each registry partition's hash chain head.
        self.chains: dict[str, ChainHead] = {}

    def _write(self, event: AuditEvent | None) -> None:
        """Append ``event`` linked after its registry partition's chain head, as the adapter does."""
        if event is not None:
            chain = chain_of(event)
            [linked], self.chains[chain] = link([event], self.chains.get(chain, ChainHead()), chain)
            self.events.append(linked)

    def put_space(self, space: Space, event: AuditEvent | None = None) -> None:
        self.spaces[space.spaceId] = space.model_copy()
        self._write(event)

    def get_space(self, space_id: str) -> Space | None:
        space = self.spaces.get(space_id)
        return space.model_copy() if space else None

    def put_member(self, member: Member, event: AuditEvent | None = None) -> None:
        if member.spaceId not in self.spaces:
            raise SpaceNotFound(f"space {member.spaceId} does not exist")
        self.members[(member.spaceId, member.userId)] = member.model_copy()
        self._write(event)

    def delete_member(self, space_id: str, user_id: str, event: AuditEvent | None = None) -> bool:
        if self.members.pop((space_id, user_id), None) is None:
            return False
        self._write(event)
        return True

    def get_member_role(self, space_id: str, user_id: str) -> SpaceRole | None:
        member = self.members.get((space_id, user_id))
        return member.role if member else None

    def put_approver(self, approver: Approver, event: AuditEvent | None = None) -> None:
        self.approvers[approver.accountId] = approver.model_copy(deep=True)
        self._write(event)

    def get_approver(self, account_id: str) -> Approver | None:
        approver = self.approvers.get(account_id)
        return approver.model_copy(deep=True) if approver else None

    def delete_approver(self, account_id: str, event: AuditEvent | None = None) -> bool:
        if self.approvers.pop(account_id, None) is None:
            return False
        self._write(event)
        return True

    def list_approvers(self, limit: int, next_token: str | None) -> Page[Approver]:
        ordered = [self.approvers[account].model_copy(deep=True) for account in sorted(self.approvers)]
        return _page(ordered, limit, next_token, "approvers")

    def approvers_with_email(self, email: str) -> list[Approver]:
        named = [approver for approver in self.approvers.values() if email in approver.addresses()]
        return [approver.model_copy(deep=True) for approver in named]

    # ---- the guarded registry: refuses what the adapter's conditions refuse, writing nothing ----

    def get_subscription(self, email: str) -> AddressSubscription | None:
        stored = self.addresses.get(email)
        return stored.model_copy(deep=True) if stored else None

    def register_approver(
        self,
        approver: Approver,
        event: AuditEvent,
        *,
        replacing: Approver | None,
        serving: list[AddressSubscription],
        released: list[AddressSubscription],
    ) -> None:
        """While the registration is still ``replacing`` (its address and time) and each address
        record still at the version read (0: absent)."""
        changed = [*serving, *released]
        self._guard(approver.accountId, replacing, changed)
        self.approvers[approver.accountId] = approver.model_copy(deep=True)
        self._store(changed)
        self._write(event)

    def unregister_approver(
        self, approver: Approver, event: AuditEvent, *, released: list[AddressSubscription]
    ) -> None:
        self._guard(approver.accountId, approver, released)
        del self.approvers[approver.accountId]
        self._store(released)
        self._write(event)

    def save_subscription(self, subscription: AddressSubscription) -> AddressSubscription:
        self._guard(None, None, [subscription])
        self._store([subscription])
        return self.get_subscription(subscription.email)  # type: ignore[return-value]

    def forget_subscription(self, subscription: AddressSubscription) -> None:
        self._guard(None, None, [subscription])
        del self.addresses[subscription.email]

    def _guard(
        self, account_id: str | None, registered: Approver | None, addresses: list[AddressSubscription]
    ) -> None:
        if account_id is not None:
            stored = self.approvers.get(account_id)
            if (stored is None) != (registered is None) or (
                stored is not None
                and registered is not None
                and (stored.email, stored.updatedAt) != (registered.email, registered.updatedAt)
            ):
                raise RegistryConflict("the registry changed while this change was being written")
        for address in addresses:
            held = self.addresses.get(address.email)
            if (held.version if held else 0) != address.version:
                raise RegistryConflict("the registry changed while this change was being written")

    def _store(self, addresses: list[AddressSubscription]) -> None:
        for address in addresses:
            self.addresses[address.email] = address.model_copy(
                deep=True, update={"version": address.version + 1}
            )


# ---- the audit log -----------------------------------------------------------------------------


class InMemoryAuditLog:
    """The ``AuditLog`` over the fakes' connections and events (the connections' and the
    registry's), filtered and ordered as the adapter's queries are. ``queries`` records each query."""

    def __init__(self, connections: InMemoryConnections, registry: InMemoryRegistry | None = None) -> None:
        self.connections = connections
        self.registry = registry
        self.queries: list[ConnectionQuery | EventQuery] = []

    def query_connections(
        self, query: ConnectionQuery, limit: int, next_token: str | None
    ) -> Page[Connection]:
        self.queries.append(query)
        chosen = [
            connection
            for connection in self.connections.stored()
            if (query.status is None or connection.status == query.status)
            and (query.space_id is None or connection.spaceId == query.space_id)
            and (query.account_id is None or connection.accountId == query.account_id)
            and _between(_sort_key(connection), query.created_from, query.created_to)
        ]
        chosen.sort(key=_sort_key, reverse=True)
        return _page(chosen, limit, next_token, f"connections:{query}")

    def query_events(self, query: EventQuery, limit: int, next_token: str | None) -> Page[AuditEvent]:
        self.queries.append(query)
        events = [*self.connections.events, *(self.registry.events if self.registry else [])]
        chosen = [
            event.model_copy()
            for event in events
            if (query.connection_id is None or event.connectionId == query.connection_id)
            and (query.actor is None or event.actor == query.actor)
            and _between(event.at, query.at_from, query.at_to)
        ]
        chosen.sort(key=lambda event: f"{event.at}#{event.eventId}", reverse=True)
        return _page(chosen, limit, next_token, f"events:{query}")

    def export_events(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[AuditEvent]:
        """As GSI4 orders them: by time, then subject, then event id; oldest first."""
        events = [*self.connections.events, *(self.registry.events if self.registry else [])]
        chosen = [event.model_copy() for event in events if _between(event.at, at_from, at_to)]
        chosen.sort(
            key=lambda event: (
                f"{event.at}#{event.connectionId or event.spaceId or event.accountId}#{event.eventId}"
            )
        )
        return _page(chosen, limit, next_token, f"export:{at_from}:{at_to}")


# ---- the digests ---------------------------------------------------------------------------------


class InMemoryDigests:
    """The ``DigestStore``: digests by ``to``, refusing (``DigestRaced``) one that does not follow
    the newest, as the adapter's head condition does. ``stored`` in order."""

    def __init__(self) -> None:
        self.stored: list[Digest] = []

    def latest(self) -> Digest | None:
        return self.stored[-1].model_copy(deep=True) if self.stored else None

    def append(self, digest: Digest) -> None:
        newest = self.stored[-1].hash if self.stored else None
        if digest.previousHash != newest:
            raise DigestRaced("another digest was stored since the newest this run read")
        self.stored.append(digest.model_copy(deep=True))

    def digests(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[Digest]:
        chosen = [
            digest.model_copy(deep=True)
            for digest in self.stored
            if (at_from is None or (digest.from_ is not None and digest.from_ >= at_from))
            and (at_to is None or digest.to <= at_to + "\uffff")
        ]
        return _page(chosen, limit, next_token, f"digests:{at_from}:{at_to}")


class FakeSigner:
    """The ``Signer``, with a real RSA key made once per test run (``cryptography``), signing as
    KMS does (RSASSA-PSS, SHA-256, a 32-byte salt); ``unavailable`` makes it raise
    ``DependencyUnavailable`` (KMS throttled). ``signed`` records each message."""

    key_id = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    _private: Any = None

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if FakeSigner._private is None:
            FakeSigner._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key = FakeSigner._private
        self.unavailable = False
        self.signed: list[bytes] = []

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if self.unavailable:
            raise DependencyUnavailable("the digest could not be signed")
        self.signed.append(message)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return bytes(self.private_key.sign(message, pss, hashes.SHA256()))

    def public_key_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return str(
            self.private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )


# ---- the workflow, the mail, the subscriptions --------------------------------------------------


class FakeWorkflow:
    """The ``Workflow``: records each start and each answer to a task. A task answered once is
    closed (as Step Functions closes it); ``close(task_token)`` closes one (timed out, stopped);
    ``start_error`` makes every start raise it."""

    def __init__(self, start_error: Exception | None = None) -> None:
        self.start_error = start_error
        self.starts: list[tuple[str, dict[str, Any]]] = []
        self.succeeded: list[tuple[str, dict[str, Any]]] = []
        self.failed: list[tuple[str, str, str]] = []
        self.closed: set[str] = set()

    def start(self, connection_id: str, payload: dict[str, Any]) -> str:
        if self.start_error is not None:
            raise self.start_error
        if connection_id not in {started for started, _ in self.starts}:
            self.starts.append((connection_id, dict(payload)))
        return f"arn:aws:states:us-east-1:123456789012:execution:approval:{connection_id}"

    def close(self, task_token: str) -> None:
        self.closed.add(task_token)

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        self._answer(task_token)
        self.succeeded.append((task_token, dict(output)))

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self._answer(task_token)
        self.failed.append((task_token, error, cause))

    def _answer(self, task_token: str) -> None:
        if task_token in self.closed:
            raise TaskAlreadyClosed("the approval workflow is no longer waiting for a decision")
        self.closed.add(task_token)


@dataclass(frozen=True)
class Email:
    account_id: str
    subject: str
    body: str
    recipients: tuple[str, ...] = ()

    @property
    def token(self) -> str:
        """The link token of the email's verification link: the service's own line, never one
        quoted from what the requester wrote."""
        match = re.search(r"^[^>\s]\S*/verify\?token=(\S+)", self.body, re.MULTILINE)
        assert match, "the email has no verification link"
        return unquote(match[1])


class FakeMailer:
    """The ``Mailer``: keeps every email in ``emails``; ``unavailable`` makes sending raise
    ``DependencyUnavailable`` (SNS throttled)."""

    def __init__(self) -> None:
        self.emails: list[Email] = []
        self.unavailable = False

    def to(self, address: str) -> list[Email]:
        """The emails ``address`` received (its subscription's filter lets through those naming it)."""
        return [email for email in self.emails if address in email.recipients]

    def send(self, account_id: str, recipients: list[str], subject: str, body: str) -> str:
        if self.unavailable:
            raise DependencyUnavailable("the approval email could not be sent yet")
        self.emails.append(Email(account_id, subject, body, tuple(sorted(set(recipients)))))
        return f"message-{len(self.emails)}"


@dataclass
class Subscription:
    email: str
    accounts: list[str]


class FakeSubscriptions:
    """The ``Subscriptions``: each email subscription and the accounts its filter lets through.
    As SNS, one subscription per address: ``subscribe`` finds the address's own, made with a filter
    that lets nothing through, and refuses (``RegistryConflict``) once its filter was changed.
    ``withhold_arn`` makes ``subscribe`` answer None (SNS withholding an unconfirmed ARN)."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.withhold_arn = False
        self._made = 0

    def subscribe(self, email: str) -> str | None:
        arn = next((arn for arn, sub in self.subscriptions.items() if sub.email == email), None)
        if arn is not None and self.subscriptions[arn].accounts:
            raise RegistryConflict(
                "the address's subscription was changed meanwhile"
            )  # SNS: InvalidParameter
        if arn is None:
            self._made += 1
            arn = f"arn:aws:sns:us-east-1:123456789012:approvals:sub-{self._made}"
            self.subscriptions[arn] = Subscription(email, [])
        return None if self.withhold_arn else arn

    def set_accounts(self, subscription_arn: str, email: str, account_ids: list[str]) -> bool:
        if subscription_arn not in self.subscriptions or self.subscriptions[subscription_arn].email != email:
            return False  # SNS: NotFound
        self.subscriptions[subscription_arn].accounts = sorted(account_ids)
        return True

    def unsubscribe(self, subscription_arn: str | None) -> bool:
        return subscription_arn is not None and self.subscriptions.pop(subscription_arn, None) is not None

    def of(self, email: str) -> dict[str, list[str]]:
        """The subscriptions of ``email``: ARN -> accounts."""
        return {arn: sub.accounts for arn, sub in self.subscriptions.items() if sub.email == email}


# ---- the role verifier -------------------------------------------------------------------------


def trust_policy(principal_arn: str, effect: str = "Allow") -> str:
    """A role's trust policy as IAM returns it (URL-encoded JSON) that lets ``principal_arn`` assume it."""
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Principal": {"AWS": principal_arn}, "Action": "sts:AssumeRole"},
    ]}  # fmt: skip
    return json.dumps(document)


class _AccountRoles:
    def __init__(self, verifier: FakeVerifier, account_id: str) -> None:
        self.verifier = verifier
        self.account_id = account_id

    def get_role(self, role_name: str) -> dict[str, Any] | None:
        if self.verifier.transient:
            raise DependencyUnavailable(f"IAM did not answer for account {self.account_id}: Throttling")
        if role_name in self.verifier.unreadable:
            raise RoleCheckFailed(f"the verifier role may not read role {role_name}: AccessDenied")
        role = self.verifier.roles.get(self.account_id, {}).get(role_name)
        return dict(role) if role else None


class FakeVerifier:
    """The ``RoleVerifier``: the roles of each account (as ``iam:GetRole`` returns them). An account
    in ``refused`` has no verifier role this service may assume (``RoleCheckFailed``); ``transient``
    makes STS and IAM fail as when throttled (``DependencyUnavailable``); ``opened`` records each
    assumption of a verifier role."""

    def __init__(self) -> None:
        self.roles: dict[str, dict[str, dict[str, Any]]] = {}
        self.refused: set[str] = set()
        self.unreadable: set[str] = set()
        self.transient = False
        self.opened: list[tuple[str, str]] = []

    def add_role(self, account_id: str, name: str, trust: str, *, path: str = "/") -> str:
        """A role in the account whose trust policy is ``trust``; returns its ARN."""
        arn = f"arn:aws:iam::{account_id}:role{path}{name}"
        self.roles.setdefault(account_id, {})[name] = {
            "RoleName": name, "Path": path, "Arn": arn, "AssumeRolePolicyDocument": trust,
        }  # fmt: skip
        return arn

    def open(self, partition: str, account_id: str) -> AccountRoles:
        if self.transient:
            raise DependencyUnavailable(f"STS did not answer for account {account_id}")
        self.opened.append((partition, account_id))
        if account_id in self.refused:
            raise RoleCheckFailed(
                f"the verifier role arn:{partition}:iam::{account_id}:role/AccountConnectionsVerifier cannot "
                "be assumed (AccessDenied): the account's administrator must create it and let this "
                "service assume it"
            )
        return _AccountRoles(self, account_id)


# mypy proves that each fake has its port's shape.
class FakeProofVerifier:
    """The ``ProofVerifier``: a proof made for the connection (its ``X-Account-Connection-Id``)
    proves ``identity``; ``refuse`` makes every proof refused (as STS refuses a bad signature).
    ``calls`` are the connections proofs were checked for."""

    def __init__(self, identity: CallerIdentity | None = None, *, refuse: str | None = None) -> None:
        self.identity = identity or CallerIdentity(
            "111122223333", "arn:aws:sts::111122223333:assumed-role/Admin/admin", "AROAADMIN:admin"
        )
        self.refuse = refuse
        self.calls: list[str] = []

    def verify(self, proof: AccountProof, connection_id: str) -> tuple[CallerIdentity, str]:
        self.calls.append(connection_id)
        bound = {name.lower(): value for name, value in proof.headers.items()}.get("x-account-connection-id")
        if self.refuse or bound != connection_id:
            raise AccountProofRefused(f"the account proof was refused: {self.refuse or 'another connection'}")
        return self.identity, f"signature-{len(self.calls)}"


def fake_proof(connection_id: str) -> AccountProof:
    """A proof ``FakeProofVerifier`` accepts for ``connection_id`` (its shape only: no signature)."""
    return AccountProof(method="POST", url="https://sts.us-east-1.amazonaws.com/",
                        body="QWN0aW9uPUdldENhbGxlcklkZW50aXR5JlZlcnNpb249MjAxMS0wNi0xNQ==",
                        headers={"X-Account-Connection-Id": connection_id})  # fmt: skip


_connections: ConnectionStore = InMemoryConnections()
_tokens: TokenStore = InMemoryTokens()
_registry: RegistryStore = InMemoryRegistry()
_audit: AuditLog = InMemoryAuditLog(InMemoryConnections())
_workflow: Workflow = FakeWorkflow()
_mailer: Mailer = FakeMailer()
_subscriptions: Subscriptions = FakeSubscriptions()
_verifier: RoleVerifier = FakeVerifier()
_proofs: ProofVerifier = FakeProofVerifier()
_roles: AccountRoles = _AccountRoles(FakeVerifier(), "111122223333")
