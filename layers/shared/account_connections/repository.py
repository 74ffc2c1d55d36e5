"""The state table: every read and write of connections, events, spaces, members, approvers
and verification links. The only module that speaks DynamoDB.

One table, keys ``pk``/``sk``, four overloaded indexes (see docs/data-model.md):

=========  ============================  ===================================================
index      connection item               other items
=========  ============================  ===================================================
GSI1       SPACE#<space> / <created>#id  event: ACTOR#<actor> / <at>#<id>#<version>
GSI2       ACCOUNT#<acct> / <created>#id
GSI3       STATUS#<status> / <created>#id
GSI4       ALL#CONNECTION / <created>#id event: ALL#EVENT / <at>#..., approver: ALL#APPROVER / acct
=========  ============================  ===================================================

Every status change is one ``TransactWriteItems``: the conditional update of the connection
and the put of its audit event (and of whatever else must change with it).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from account_connections.errors import (
    ConnectionAlreadyDecided,
    ConnectionAlreadyLive,
    ConnectionNotFound,
    InvalidRequest,
    SpaceNotFound,
)
from account_connections.models import (
    Approver,
    AuditEvent,
    Connection,
    EventType,
    Member,
    RoleAttachment,
    Space,
    SpaceRole,
    isoformat,
    request_digest,
    utcnow,
)
from account_connections.statuses import LIVE_STATUSES, ConnectionStatus, can_transition

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

CONNECTION_SK = "CONNECTION"
ALL_CONNECTIONS = "ALL#CONNECTION"
ALL_EVENTS = "ALL#EVENT"
ALL_APPROVERS = "ALL#APPROVER"
# Keys and internal attributes that never leave the repository.
_INTERNAL = {
    "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk",
    "ttl", "taskToken", "linkTokenHash", "connectionTokenHash", "executionArn", "correlationId",
    "csrfSecret", "verifyBaseUrl", "requestDigest",
}  # fmt: skip
# What a token item keeps that only the server may see: the workflow's task token and the CSRF
# secret, copied there so that a decision needs no read of the connection item.
_TOKEN_SECRETS = ("taskToken", "csrfSecret")


def _conn_pk(connection_id: str) -> str:
    return f"CONNECTION#{connection_id}"


def _live_key(space_id: str, account_id: str) -> dict[str, str]:
    return {"pk": f"LIVE#{space_id}#{account_id}", "sk": "LIVE"}


def _token_key(token_hash: str) -> dict[str, str]:
    return {"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"}


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (int(value) if key == "version" else value)
        for key, value in item.items()
        if key not in _INTERNAL
    }


def _delete_existing(table: str, key: dict[str, str]) -> dict[str, Any]:
    condition = "attribute_exists(pk)"
    return {"Delete": {"TableName": table, "Key": serialize(key), "ConditionExpression": condition}}


def _cancellation_codes(exc: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True)
class ConnectionQuery:
    """An auditor's filter over connections; the repository picks the index that serves it."""

    status: ConnectionStatus | None = None
    space_id: str | None = None
    account_id: str | None = None
    created_from: str | None = None
    created_to: str | None = None


@dataclass(frozen=True)
class EventQuery:
    connection_id: str | None = None
    actor: str | None = None
    at_from: str | None = None
    at_to: str | None = None


@dataclass
class Transition:
    """What a status change writes besides the status itself."""

    set_fields: dict[str, Any] = field(default_factory=dict)
    remove_fields: list[str] = field(default_factory=list)
    detail: str | None = None
    extra_items: list[dict[str, Any]] = field(default_factory=list)
    # Further attributes the connection item must hold for the change to happen (a decision
    # requires the ``requestDigest`` of the request as shown).
    expect: dict[str, Any] = field(default_factory=dict)
    # Leaving the live statuses frees the account's lock, unless the lock is not this connection's
    # (a verification that found another live connection must still be able to record FAILED).
    release_live: bool = True


class Repository:
    """Data access over the state table, given its name and a DynamoDB client."""

    def __init__(self, table_name: str, dynamodb: Any) -> None:
        self.table = table_name
        self.ddb = dynamodb

    # ---- connections ---------------------------------------------------------------------

    def connection_item(self, connection: Connection, **internal: Any) -> dict[str, Any]:
        sort = f"{connection.createdAt}#{connection.connectionId}"
        item = connection.model_dump(exclude_none=True)
        item.update(
            pk=_conn_pk(connection.connectionId),
            sk=CONNECTION_SK,
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

    def event_item(self, event: AuditEvent) -> dict[str, Any]:
        item = event.model_dump(exclude_none=True)
        if event.connectionId is None:
            # A change of the registry: kept apart from every connection's history.
            subject = f"SPACE#{event.spaceId}" if event.spaceId else f"ACCOUNT#{event.accountId}"
            pk = f"REGISTRY#{subject}"
        else:
            subject, pk = event.connectionId, _conn_pk(event.connectionId)
        sort = f"{event.at}#{subject}#{event.eventId}"
        item.update(
            pk=pk,
            sk=f"EVENT#{event.at}#{event.eventId}",
            gsi1pk=f"ACTOR#{event.actor}",
            gsi1sk=sort,
            gsi4pk=ALL_EVENTS,
            gsi4sk=sort,
        )
        return item

    def create_connection(
        self,
        connection: Connection,
        event: AuditEvent,
        *,
        connection_token_hash: str,
        token_item: dict[str, Any],
    ) -> None:
        """Store a new request, its live-account lock, its connection token and its audit event.

        Raises ``ConnectionAlreadyLive`` if the account has a live connection in the space.
        """
        live_key = _live_key(connection.spaceId, connection.accountId)
        live = {**live_key, "connectionId": connection.connectionId}
        stored = self.connection_item(
            connection, connectionTokenHash=connection_token_hash, requestDigest=request_digest(connection)
        )
        items = [
            {"Put": {"TableName": self.table, "Item": serialize(live),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table,
                     "Item": serialize(stored),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table, "Item": serialize(token_item),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self.table, "Item": serialize(self.event_item(event))}},
        ]  # fmt: skip
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                if _cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                    raise ConnectionAlreadyLive(
                        f"account {connection.accountId} already has a pending or verified connection "
                        f"in space {connection.spaceId}"
                    ) from exc
            raise

    def get_connection_item(self, connection_id: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=self.table,
            Key=serialize({"pk": _conn_pk(connection_id), "sk": CONNECTION_SK}),
            ConsistentRead=True,
        )
        return deserialize(response["Item"]) if "Item" in response else None

    def get_connection(self, connection_id: str) -> Connection:
        """Raises ``ConnectionNotFound``."""
        return self.read_connection(connection_id)[0]

    def read_connection(self, connection_id: str) -> tuple[Connection, dict[str, Any]]:
        """The connection and its stored item (with the internal attributes), from one read.

        Raises ``ConnectionNotFound``."""
        item = self.get_connection_item(connection_id)
        if item is None:
            raise ConnectionNotFound(f"connection {connection_id} does not exist")
        return Connection.model_validate(_public(item)), item

    def get_connection_detail(
        self, connection_id: str
    ) -> tuple[Connection, list[RoleAttachment], list[AuditEvent]]:
        """The connection, its roles and its history, read from its own partition in one Query."""
        items = self._query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=serialize({":pk": _conn_pk(connection_id)}),
            ConsistentRead=True,
        )
        connection: Connection | None = None
        roles: list[RoleAttachment] = []
        history: list[AuditEvent] = []
        for item in items:
            sk = item["sk"]
            if sk == CONNECTION_SK:
                connection = Connection.model_validate(_public(item))
            elif sk.startswith("ROLE#"):
                roles.append(RoleAttachment.model_validate(_public(item)))
            elif sk.startswith("EVENT#"):
                history.append(AuditEvent.model_validate(_public(item)))
        if connection is None:
            raise ConnectionNotFound(f"connection {connection_id} does not exist")
        return connection, roles, history

    def transition(
        self,
        connection: Connection,
        target: ConnectionStatus,
        actor: str,
        change: Transition | None = None,
    ) -> Connection:
        """Move ``connection`` from its current status to ``target``, with its audit event.

        The write is conditional on the status and version read: a concurrent change makes it
        fail with ``ConnectionAlreadyDecided``. Leaving the live statuses frees the account.
        """
        change = change or Transition()
        source = connection.status
        if not can_transition(source, target):
            raise ConnectionAlreadyDecided(f"a {source} connection cannot become {target}")
        now = isoformat(utcnow())
        version = connection.version + 1
        fields: dict[str, Any] = {
            "status": str(target),
            "updatedAt": now,
            "version": version,
            "gsi3pk": f"STATUS#{target}",
            **change.set_fields,
        }
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        if change.remove_fields:
            removed = {f"#r{i}": name for i, name in enumerate(change.remove_fields)}
            names.update(removed)
            expression += " REMOVE " + ", ".join(removed)
        names.update({"#status": "status", "#version": "version"})
        values.update({":expected": str(source), ":expectedVersion": connection.version})
        condition = "#status = :expected AND #version = :expectedVersion"
        for i, (name, value) in enumerate(change.expect.items()):
            names[f"#e{i}"] = name
            values[f":e{i}"] = value
            condition += f" AND #e{i} = :e{i}"
        event = AuditEvent(
            eventId=f"{version:06d}",
            connectionId=connection.connectionId,
            spaceId=connection.spaceId,
            accountId=connection.accountId,
            type=EventType.STATUS_CHANGED,
            actor=actor,
            at=now,
            fromStatus=source,
            toStatus=target,
            detail=change.detail,
        )
        items: list[dict[str, Any]] = [
            {"Update": {
                "TableName": self.table,
                "Key": serialize({"pk": _conn_pk(connection.connectionId), "sk": CONNECTION_SK}),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": serialize(values),
            }},
            {"Put": {"TableName": self.table, "Item": serialize(self.event_item(event)),
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ]  # fmt: skip
        if change.release_live and source in LIVE_STATUSES and target not in LIVE_STATUSES:
            items.append({"Delete": {
                "TableName": self.table,
                "Key": serialize(_live_key(connection.spaceId, connection.accountId)),
                "ConditionExpression": "connectionId = :id",
                "ExpressionAttributeValues": serialize({":id": connection.connectionId}),
            }})  # fmt: skip
        items.extend(change.extra_items)
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConnectionAlreadyDecided(
                    f"connection {connection.connectionId} changed before it could become {target}"
                ) from exc
            raise
        updated = connection.model_dump()
        updated.update(
            {k: v for k, v in fields.items() if not k.startswith("gsi")},
            status=target,
        )
        for name in change.remove_fields:
            updated.pop(name, None)
        return Connection.model_validate(updated)

    def record_event(
        self,
        connection: Connection,
        event_type: EventType,
        actor: str,
        detail: str,
        extra_items: list[dict[str, Any]] | None = None,
        set_fields: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event that changes no status (a link sent, a role attached or detached),
        together with ``extra_items``, in one transaction conditional on the connection's status.
        ``set_fields`` also sets internal fields of the connection (a link's hash, the task token)
        under that same condition."""
        now = isoformat(utcnow())
        event = AuditEvent(
            eventId=uuid.uuid4().hex,
            connectionId=connection.connectionId,
            spaceId=connection.spaceId,
            accountId=connection.accountId,
            type=event_type,
            actor=actor,
            at=now,
            detail=detail,
        )
        guard: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize({"pk": _conn_pk(connection.connectionId), "sk": CONNECTION_SK}),
            "ConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": serialize({":status": str(connection.status)}),
        }
        if set_fields:
            # One transaction may touch an item once: the guard itself becomes the update.
            guard["UpdateExpression"] = "SET " + ", ".join(f"#s{i} = :s{i}" for i in range(len(set_fields)))
            guard["ExpressionAttributeNames"].update({f"#s{i}": name for i, name in enumerate(set_fields)})
            guard["ExpressionAttributeValues"].update(
                serialize({f":s{i}": value for i, value in enumerate(set_fields.values())})
            )
        items = [
            {"Update" if set_fields else "ConditionCheck": guard},
            {"Put": {"TableName": self.table, "Item": serialize(self.event_item(event))}},
            *(extra_items or []),
        ]  # fmt: skip
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise ConnectionAlreadyDecided(
                    f"connection {connection.connectionId} is no longer {connection.status}"
                ) from exc
            raise
        return event

    def set_connection_fields(self, connection_id: str, expected: ConnectionStatus, **fields: Any) -> bool:
        """Set internal fields (the task token, the link hash) while the status is ``expected``.

        Returns False when the status moved on meanwhile.
        """
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        names["#status"] = "status"
        values[":expected"] = str(expected)
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=serialize({"pk": _conn_pk(connection_id), "sk": CONNECTION_SK}),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list_space_connections(
        self, space_id: str, status: ConnectionStatus | None, limit: int, next_token: str | None
    ) -> Page:
        """A space's connections, newest first, one Query on GSI1."""
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
        return self._page(kwargs, "gsi1pk", f"SPACE#{space_id}", limit, next_token)

    def query_connections(self, query: ConnectionQuery, limit: int, next_token: str | None) -> Page:
        """The auditor's connection query: one Query on the index that serves its most selective
        filter (account, then space, then status, then all), newest first, by creation date."""
        filters: dict[str, Any] = {}
        if query.account_id:
            index, pk_name, sk_name, pk = "GSI2", "gsi2pk", "gsi2sk", f"ACCOUNT#{query.account_id}"
            filters = {"spaceId": query.space_id, "status": query.status}
        elif query.space_id:
            index, pk_name, sk_name, pk = "GSI1", "gsi1pk", "gsi1sk", f"SPACE#{query.space_id}"
            filters = {"status": query.status}
        elif query.status:
            index, pk_name, sk_name, pk = "GSI3", "gsi3pk", "gsi3sk", f"STATUS#{query.status}"
        else:
            index, pk_name, sk_name, pk = "GSI4", "gsi4pk", "gsi4sk", ALL_CONNECTIONS
        kwargs = self._range_query(index, pk_name, sk_name, pk, query.created_from, query.created_to, filters)
        return self._page(kwargs, pk_name, pk, limit, next_token)

    def query_events(self, query: EventQuery, limit: int, next_token: str | None) -> Page:
        """The auditor's event query: one Query, newest first."""
        if query.connection_id:
            pk_value = _conn_pk(query.connection_id)
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": {":pk": pk_value, ":prefix": "EVENT#"},
                "ScanIndexForward": False,
            }
            low = f"EVENT#{query.at_from}" if query.at_from else None
            high = f"EVENT#{query.at_to}\uffff" if query.at_to else None
            if low or high:
                kwargs["KeyConditionExpression"] = "pk = :pk AND sk BETWEEN :low AND :high"
                kwargs["ExpressionAttributeValues"] = {
                    ":pk": pk_value, ":low": low or "EVENT#", ":high": high or "EVENT#\uffff",
                }  # fmt: skip
            if query.actor:
                kwargs["FilterExpression"] = "actor = :actor"
                kwargs["ExpressionAttributeValues"][":actor"] = query.actor
            return self._page(kwargs, "pk", pk_value, limit, next_token)
        if query.actor:
            index, pk_name, sk_name, pk = "GSI1", "gsi1pk", "gsi1sk", f"ACTOR#{query.actor}"
        else:
            index, pk_name, sk_name, pk = "GSI4", "gsi4pk", "gsi4sk", ALL_EVENTS
        kwargs = self._range_query(index, pk_name, sk_name, pk, query.at_from, query.at_to, {})
        return self._page(kwargs, pk_name, pk, limit, next_token)

    def live_holder(self, space_id: str, account_id: str) -> str | None:
        """The id of the connection that holds the account live in the space, if any."""
        item = self._get(_live_key(space_id, account_id))
        return str(item["connectionId"]) if item else None

    # ---- roles ----------------------------------------------------------------------------

    def role_item(self, connection_id: str, role: RoleAttachment) -> dict[str, Any]:
        key = {"pk": _conn_pk(connection_id), "sk": f"ROLE#{role.roleName}"}
        return {**key, **role.model_dump(exclude_none=True)}

    def put_role_op(self, connection_id: str, role: RoleAttachment) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": serialize(self.role_item(connection_id, role))}}

    def delete_role_op(self, connection_id: str, role_name: str) -> dict[str, Any]:
        return {"Delete": {
            "TableName": self.table,
            "Key": serialize({"pk": _conn_pk(connection_id), "sk": f"ROLE#{role_name}"}),
            "ConditionExpression": "attribute_exists(pk)",
        }}  # fmt: skip

    def get_role(self, connection_id: str, role_name: str) -> RoleAttachment | None:
        response = self.ddb.get_item(
            TableName=self.table,
            Key=serialize({"pk": _conn_pk(connection_id), "sk": f"ROLE#{role_name}"}),
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        return RoleAttachment.model_validate(_public(deserialize(response["Item"])))

    # ---- verification tokens --------------------------------------------------------------

    def token_key(self, token_hash: str) -> dict[str, str]:
        return _token_key(token_hash)

    def get_token(self, token_hash: str) -> dict[str, Any] | None:
        return self._get(_token_key(token_hash))

    def put_token_op(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": serialize(item),
                        "ConditionExpression": "attribute_not_exists(pk)"}}  # fmt: skip

    def refresh_token_op(self, token_hash: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Set attributes of an existing token item (the connection token gets each new link's
        task token, CSRF secret and administrator's address)."""
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        return {"Update": {
            "TableName": self.table,
            "Key": serialize(_token_key(token_hash)),
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {f"#f{i}": name for i, name in enumerate(fields)},
            "ExpressionAttributeValues": serialize(values),
        }}  # fmt: skip

    def retire_token_op(self, token_hash: str, state: str, *, require_active: bool) -> dict[str, Any]:
        """Mark a link used, replaced or cancelled, dropping its copy of the task token and CSRF
        secret; ``require_active`` makes it the one-time consume."""
        op: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(_token_key(token_hash)),
            "UpdateExpression": "SET #state = :state REMOVE " + ", ".join(_TOKEN_SECRETS),
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": serialize({":state": state}),
        }
        if require_active:
            op["ConditionExpression"] = "#state = :active"
            op["ExpressionAttributeValues"] = serialize({":state": state, ":active": "ACTIVE"})
        else:
            op["ConditionExpression"] = "attribute_exists(pk)"
        return {"Update": op}

    # ---- spaces, members, approvers --------------------------------------------------------

    def put_space(self, space: Space, event: AuditEvent | None = None) -> None:
        """Store the space, with its audit event in the same transaction."""
        item = {"pk": f"SPACE#{space.spaceId}", "sk": "SPACE", **space.model_dump()}
        self._write([{"Put": {"TableName": self.table, "Item": serialize(item)}}], event)

    def get_space(self, space_id: str) -> Space | None:
        item = self._get({"pk": f"SPACE#{space_id}", "sk": "SPACE"})
        return Space.model_validate(_public(item)) if item else None

    def put_member(self, member: Member, event: AuditEvent | None = None) -> None:
        """Store the member, in one transaction with a check that the space exists and with its
        audit event. Raises ``SpaceNotFound``."""
        space_key = {"pk": f"SPACE#{member.spaceId}", "sk": "SPACE"}
        item = {"pk": f"SPACE#{member.spaceId}", "sk": f"MEMBER#{member.userId}", **member.model_dump()}
        items = [
            {"ConditionCheck": {"TableName": self.table, "Key": serialize(space_key),
                                "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": self.table, "Item": serialize(item)}},
        ]  # fmt: skip
        if not self._write(items, event):
            raise SpaceNotFound(f"space {member.spaceId} does not exist")

    def delete_member(self, space_id: str, user_id: str, event: AuditEvent | None = None) -> bool:
        """Remove the member with its audit event; False when there was no such member."""
        key = {"pk": f"SPACE#{space_id}", "sk": f"MEMBER#{user_id}"}
        return self._write([_delete_existing(self.table, key)], event)

    def get_member_role(self, space_id: str, user_id: str) -> SpaceRole | None:
        item = self._get({"pk": f"SPACE#{space_id}", "sk": f"MEMBER#{user_id}"})
        return SpaceRole(item["role"]) if item else None

    def put_approver(self, approver: Approver, event: AuditEvent | None = None) -> None:
        """Store the account's administrator, with its audit event in the same transaction."""
        item = {
            "pk": f"APPROVER#{approver.accountId}", "sk": "APPROVER",
            "gsi4pk": ALL_APPROVERS, "gsi4sk": approver.accountId, **approver.model_dump(),
        }  # fmt: skip
        self._write([{"Put": {"TableName": self.table, "Item": serialize(item)}}], event)

    def get_approver(self, account_id: str) -> Approver | None:
        item = self._get({"pk": f"APPROVER#{account_id}", "sk": "APPROVER"})
        return Approver.model_validate(_public(item)) if item else None

    def delete_approver(self, account_id: str, event: AuditEvent | None = None) -> bool:
        """Remove the account's administrator with its audit event; False when there was none."""
        key = {"pk": f"APPROVER#{account_id}", "sk": "APPROVER"}
        return self._write([_delete_existing(self.table, key)], event)

    def list_approvers(self, limit: int, next_token: str | None) -> Page:
        kwargs: dict[str, Any] = {
            "IndexName": "GSI4",
            "KeyConditionExpression": "gsi4pk = :pk",
            "ExpressionAttributeValues": {":pk": ALL_APPROVERS},
        }
        return self._page(kwargs, "gsi4pk", ALL_APPROVERS, limit, next_token)

    def approvers_with_email(self, email: str) -> list[Approver]:
        """Every account that ``email`` administers (one SNS subscription serves them all):
        a Query of the approvers' partition of GSI4, filtered on the address."""
        items = self._query_all(
            IndexName="GSI4",
            KeyConditionExpression="gsi4pk = :pk",
            FilterExpression="email = :email",
            ExpressionAttributeValues=serialize({":pk": ALL_APPROVERS, ":email": email}),
        )
        return [Approver.model_validate(_public(item)) for item in items]

    # ---- helpers ---------------------------------------------------------------------------

    def _write(self, items: list[dict[str, Any]], event: AuditEvent | None) -> bool:
        """Write ``items`` and the audit event of the change in one transaction. Returns False
        when the first item's condition failed (nothing is written then)."""
        if event is not None:
            items = [*items, {"Put": {"TableName": self.table, "Item": serialize(self.event_item(event)),
                                      "ConditionExpression": "attribute_not_exists(pk)"}}]  # fmt: skip
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self.ddb.get_item(TableName=self.table, Key=serialize(key), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else None

    def _range_query(
        self,
        index: str,
        pk_name: str,
        sk_name: str,
        pk: str,
        low: str | None,
        high: str | None,
        filters: dict[str, Any],
    ) -> dict[str, Any]:
        values: dict[str, Any] = {":pk": pk}
        condition = f"{pk_name} = :pk"
        if low and high:
            condition += f" AND {sk_name} BETWEEN :low AND :high"
            values.update({":low": low, ":high": high + "\uffff"})
        elif low:
            condition += f" AND {sk_name} >= :low"
            values[":low"] = low
        elif high:
            condition += f" AND {sk_name} <= :high"
            values[":high"] = high + "\uffff"
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        active = {name: value for name, value in filters.items() if value}
        if active:
            kwargs["ExpressionAttributeNames"] = {f"#{name}": name for name in active}
            kwargs["FilterExpression"] = " AND ".join(f"#{name} = :{name}" for name in active)
            values.update({f":{name}": str(value) for name, value in active.items()})
        return kwargs

    def _page(
        self, kwargs: dict[str, Any], pk_name: str, pk: str, limit: int, next_token: str | None
    ) -> Page:
        kwargs = {**kwargs, "TableName": self.table, "Limit": limit}
        kwargs["ExpressionAttributeValues"] = serialize(kwargs["ExpressionAttributeValues"])
        if next_token:
            kwargs["ExclusiveStartKey"] = decode_next_token(next_token, pk_name, pk)
        response = self.ddb.query(**kwargs)
        last = response.get("LastEvaluatedKey")
        return Page(
            items=[_public(deserialize(item)) for item in response.get("Items", [])],
            next_token=encode_next_token(last) if last else None,
        )

    def _query_all(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs["TableName"] = self.table
        while True:
            response = self.ddb.query(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def encode_next_token(last_evaluated_key: dict[str, Any]) -> str:
    plain = {name: value["S"] for name, value in last_evaluated_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_next_token(token: str, pk_name: str, pk: str) -> dict[str, Any]:
    """Raises ``InvalidRequest`` unless ``token`` is one this query handed out."""
    invalid = InvalidRequest(
        "nextToken is not valid for this query",
        errors=[{"field": "nextToken", "message": "not a token of this query"}],
    )
    try:
        padded = token + "=" * (-len(token) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise invalid from exc
    allowed = {"pk", "sk", pk_name, pk_name.replace("pk", "sk")}
    if (
        not isinstance(plain, dict)
        or plain.get(pk_name) != pk
        or set(plain) != allowed
        or not all(isinstance(value, str) and len(value) <= 1024 for value in plain.values())
    ):
        raise invalid
    return {name: {"S": value} for name, value in plain.items()}
