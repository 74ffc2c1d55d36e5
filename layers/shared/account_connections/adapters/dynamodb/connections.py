"""Connections in the state table, with their roles, links and history: the ``ConnectionStore``.

Every change is one ``TransactWriteItems``: the conditional write of the connection item (its
status and version as read, or just its status for a change that keeps it) and the put of its
audit event, with whatever else must change with it (the account's live lock, a token, a role).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from account_connections.adapters.dynamodb.audit import put_event
from account_connections.adapters.dynamodb.keys import (
    ALL_CONNECTIONS,
    CONNECTION_SK,
    EVENT_PREFIX,
    ROLE_PREFIX,
    connection_key,
    connection_pk,
    live_key,
    proof_key,
    role_key,
    token_key,
)
from account_connections.adapters.dynamodb.table import (
    Item,
    Op,
    Table,
    decode_next_token,
    encode_next_token,
    invalid_next_token,
    public,
)
from account_connections.adapters.dynamodb.tokens import put_token, refresh_token, retire_token
from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.connection import (
    Connection,
    ConnectionSecrets,
    RoleAttachment,
    ShownRequest,
    StatusChange,
    connection_event,
    request_digest,
    requested_event,
    role_event,
    status_event,
    token_replaced_event,
)
from account_connections.domain.errors import (
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    DomainError,
)
from account_connections.domain.limits import MAX_ROLES, too_many_roles
from account_connections.domain.statuses import LIVE_STATUSES, ConnectionStatus, can_transition
from account_connections.domain.tokens import LinkToken, TokenState
from account_connections.ports import NewLink, Page

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

    return ConnectionSecrets(
        link_token_hash=text("linkTokenHash"),
        connection_token_hash=text("connectionTokenHash"),
        task_token=text("taskToken"),
        csrf_secret=text("csrfSecret"),
        verify_base_url=text("verifyBaseUrl"),
        request_digest=text("requestDigest"),
        requester_email=text("requesterEmail"),
    )


def _not_found(connection_id: str) -> ConnectionNotFound:
    return ConnectionNotFound(f"connection {connection_id} does not exist")


class DynamoConnections:
    """The ``ConnectionStore`` over the state table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    # ---- reads -----------------------------------------------------------------------------

    def get(self, connection_id: str) -> Connection:
        return self.read(connection_id)[0]

    def read(self, connection_id: str) -> tuple[Connection, ConnectionSecrets]:
        item = self.table.get(connection_key(connection_id))
        if item is None:
            raise _not_found(connection_id)
        return Connection.model_validate(public(item)), _secrets(item)

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
                connection = Connection.model_validate(public(item))
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
        return Connection.model_validate(public(item)), self._roles(connection_id), history

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

    def create(self, connection: Connection, connection_token: LinkToken) -> None:
        live = {**live_key(connection.spaceId, connection.accountId), "connectionId": connection.connectionId}
        stored = connection_item(
            connection,
            connectionTokenHash=connection_token.tokenHash,
            requestDigest=request_digest(connection),
            requesterEmail=connection_token.requesterEmail,
        )
        items = [
            self.table.put(live, new=True),
            self.table.put(stored, new=True),
            put_token(self.table, connection_token),
            put_event(self.table, requested_event(connection)),
        ]

        def refused(codes: list[str]) -> DomainError | None:
            if codes[:1] != ["ConditionalCheckFailed"]:
                return None
            return ConnectionAlreadyLive(
                f"account {connection.accountId} already has a pending or verified connection "
                f"in space {connection.spaceId}"
            )

        self.table.transact(items, refused)

    def transition(
        self, connection: Connection, change: StatusChange, *, release_live: bool = True
    ) -> Connection:
        return self._transition(connection, change, release_live=release_live)

    def record_decision(
        self,
        shown: ShownRequest,
        change: StatusChange,
        *,
        token_hash: str,
        proof_signature: str | None = None,
    ) -> Connection:
        extra = [retire_token(self.table, token_hash, TokenState.USED, require_active=True)]
        if proof_signature:
            now = utcnow()
            spent = {**proof_key(proof_signature), "connectionId": shown.connectionId, "at": isoformat(now),
                     "ttl": int(now.timestamp()) + PROOF_RETENTION_SECONDS}  # fmt: skip
            extra.append(self.table.put(spent, new=True))
        digest = request_digest(shown)
        return self._transition(shown.pending(), change, expect={"requestDigest": digest}, extra=extra)

    def _transition(
        self,
        connection: Connection,
        change: StatusChange,
        *,
        release_live: bool = True,
        expect: dict[str, Any] | None = None,
        extra: list[Op] | None = None,
    ) -> Connection:
        """The conditional status change, on the status and version read (and ``expect``ed
        attributes), with its event, the live lock's release and ``extra`` operations."""
        source, target = connection.status, change.target
        if not can_transition(source, target):
            raise ConnectionAlreadyDecided(f"a {source} connection cannot become {target}")
        now = isoformat(utcnow())
        version = connection.version + 1
        fields: dict[str, Any] = {
            "status": str(target), "updatedAt": now, "version": version, "gsi3pk": f"STATUS#{target}",
            **change.fields(),
        }  # fmt: skip
        names = {"#status": "status", "#version": "version"}
        values: dict[str, Any] = {":expected": str(source), ":expectedVersion": connection.version}
        condition = "#status = :expected AND #version = :expectedVersion"
        for i, (name, value) in enumerate((expect or {}).items()):
            names[f"#e{i}"] = name
            values[f":e{i}"] = value
            condition += f" AND #e{i} = :e{i}"
        items = [
            self.table.update(connection_key(connection.connectionId), set_fields=fields, condition=condition,
                              names=names, values=values),
            put_event(self.table, status_event(connection, change, version, now)),
        ]  # fmt: skip
        if release_live and source in LIVE_STATUSES and target not in LIVE_STATUSES:
            items.append(self.table.delete(
                live_key(connection.spaceId, connection.accountId),
                condition="connectionId = :id", values={":id": connection.connectionId},
            ))  # fmt: skip
        items.extend(extra or [])
        self.table.transact(items, lambda _: ConnectionAlreadyDecided(
            f"connection {connection.connectionId} changed before it could become {target}"
        ))  # fmt: skip
        updated = connection.model_dump()
        updated.update({k: v for k, v in fields.items() if not k.startswith("gsi")}, status=target)
        return Connection.model_validate(updated)

    def issue_link(self, connection: Connection, link: NewLink, *, actor: str) -> None:
        token = link.token
        fields: dict[str, Any] = {"linkTokenHash": token.tokenHash, "verifyBaseUrl": link.verify_base_url}
        if link.task_token is not None:
            fields.update(taskToken=link.task_token, csrfSecret=link.csrf_secret)
        extra = [put_token(self.table, token)]
        if link.replaces and link.replaces != token.tokenHash:
            extra.append(retire_token(self.table, link.replaces, TokenState.REPLACED, require_active=False))
        if link.connection_token_hash:
            copies = {
                "taskToken": token.taskToken,
                "csrfSecret": token.csrfSecret,
                "approverEmail": token.approverEmail,
            }
            refreshed: dict[str, Any] = {name: value for name, value in copies.items() if value}
            # The principals as registered now, none included: a list the registry dropped must not
            # keep limiting (or, had it grown, fail to limit) the connection token's proofs.
            refreshed["approverPrincipals"] = token.approverPrincipals or []
            extra.append(refresh_token(self.table, link.connection_token_hash, refreshed))
        event = connection_event(connection, EventType.LINK_SENT, actor, link.detail)
        # Every link counts (the time of the last with it); a connection stored before the count
        # existed counts its link as one.
        fields["lastLinkAt"] = token.createdAt
        counters = {"linkCount": (1, 1 if link.replaces else 0)}
        limit = link.limit
        if limit is None:
            self._keeping_status(connection, event, extra, fields, counters=counters)
            return
        at = datetime.fromisoformat(token.createdAt)
        guard = (
            "(attribute_not_exists(#linkCount) OR #linkCount < :maxLinks) AND "
            "(attribute_not_exists(#lastLinkAt) OR #lastLinkAt <= :lastLinkBy)",
            {"#linkCount": "linkCount", "#lastLinkAt": "lastLinkAt"},
            {":maxLinks": limit.max_links, ":lastLinkBy": isoformat(at - limit.interval)},
        )

        def refusal() -> DomainError:
            """Which condition refused the link, from the connection as it now is."""
            item = self.table.get(connection_key(connection.connectionId))
            if item is not None and item.get("status") == str(connection.status):
                last = item.get("lastLinkAt")
                sent = int(item.get("linkCount", 0))
                refused = limit.refusal(sent, datetime.fromisoformat(str(last)) if last else None, at)
                if refused is not None:
                    return refused
            return ConnectionAlreadyDecided(f"connection {connection.connectionId} changed meanwhile")

        self._keeping_status(
            connection, event, extra, fields, counters=counters, guard=guard, refusal=refusal
        )

    def rotate_connection_token(
        self, connection: Connection, token: LinkToken, *, secrets: ConnectionSecrets, actor: str
    ) -> None:
        replaces = secrets.connection_token_hash
        if not replaces:
            raise ConnectionAlreadyDecided(f"connection {connection.connectionId} has no connection token")
        # The link as read too: a link issued since refreshed the old token's copies, which the
        # new token must carry (the caller reads again and retries).
        names = {"#status": "status", "#held": "connectionTokenHash", "#link": "linkTokenHash"}
        values: dict[str, Any] = {":pending": str(ConnectionStatus.PENDING_APPROVAL), ":held": replaces}
        condition = "#status = :pending AND #held = :held AND "
        if secrets.link_token_hash:
            condition += "#link = :link"
            values[":link"] = secrets.link_token_hash
        else:
            condition += "attribute_not_exists(#link)"
        guard = self.table.update(
            connection_key(connection.connectionId), set_fields={"connectionTokenHash": token.tokenHash},
            condition=condition, names=names, values=values,
        )  # fmt: skip
        items = [
            guard,
            put_event(self.table, token_replaced_event(connection, actor)),
            put_token(self.table, token),
            retire_token(self.table, replaces, TokenState.REPLACED, require_active=True),
        ]
        self.table.transact(items, lambda _: ConnectionAlreadyDecided(
            f"connection {connection.connectionId} changed before its connection token could be replaced"
        ))  # fmt: skip

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

    def retire_link(self, connection: Connection, secrets: ConnectionSecrets, *, actor: str) -> None:
        link = secrets.link_token_hash
        if not link:
            raise ConnectionAlreadyDecided(f"connection {connection.connectionId} has no live link")
        guard = self.table.update(
            connection_key(connection.connectionId), remove=["linkTokenHash"],
            condition="#status = :status AND #link = :link",
            names={"#status": "status", "#link": "linkTokenHash"},
            values={":status": str(connection.status), ":link": link},
        )  # fmt: skip
        detail = "link withdrawn: no administrator is registered for the account"
        items = [
            guard,
            put_event(self.table, connection_event(connection, EventType.LINK_REVOKED, actor, detail)),
            retire_token(self.table, link, TokenState.REVOKED, require_active=False),
        ]
        if secrets.connection_token_hash:
            items.append(self.table.update(token_key(secrets.connection_token_hash),
                                           remove=["approverEmail", "approverPrincipals"]))  # fmt: skip
        self.table.transact(items, lambda _: ConnectionAlreadyDecided(
            f"connection {connection.connectionId} changed before its link could be withdrawn"
        ))  # fmt: skip

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
        guard: tuple[str, dict[str, str], dict[str, Any]] | None = None,
        refusal: Callable[[], DomainError] | None = None,
    ) -> None:
        """Append ``event`` with ``extra`` in one transaction conditional on the connection's status;
        ``fields`` and ``counters`` also change internal fields of the connection under that same
        condition (one transaction may touch an item once: the guard itself becomes the update).
        ``guard`` adds a condition on the connection item (its expression, names and values); when
        the connection's condition fails, ``refusal()`` says why (default: it changed status)."""
        condition, names, values = (
            "#status = :status",
            {"#status": "status"},
            {":status": str(connection.status)},
        )
        if guard is not None:
            condition = f"{condition} AND {guard[0]}"
            names, values = {**names, **guard[1]}, {**values, **guard[2]}
        update = self.table.update(
            connection_key(connection.connectionId), set_fields=fields, condition=condition, names=names,
            values=values, counters=counters,
        )  # fmt: skip
        items = [update, put_event(self.table, event), *extra]

        def refused(codes: list[str]) -> DomainError:
            if refusal is not None and codes[:1] == ["ConditionalCheckFailed"]:
                return refusal()
            return ConnectionAlreadyDecided(
                f"connection {connection.connectionId} is no longer {connection.status}"
            )

        self.table.transact(items, refused)
