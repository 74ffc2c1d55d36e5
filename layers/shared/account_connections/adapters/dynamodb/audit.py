"""Audit events in the state table: how an event is stored (with its connection, or in its
registry partition), and the auditors' queries over connections and events, each one Query on
the index that serves it, never a Scan."""

from __future__ import annotations

from typing import Any

from account_connections.adapters.dynamodb.keys import ALL_CONNECTIONS, ALL_EVENTS, connection_pk
from account_connections.adapters.dynamodb.table import Item, Op, Table, range_query
from account_connections.domain.audit import AuditEvent
from account_connections.domain.connection import Connection
from account_connections.ports import ConnectionQuery, EventQuery, Page


def event_item(event: AuditEvent) -> Item:
    item = event.model_dump(exclude_none=True)
    if event.connectionId is None:
        # A change of the registry: kept apart from every connection's history.
        subject = f"SPACE#{event.spaceId}" if event.spaceId else f"ACCOUNT#{event.accountId}"
        pk = f"REGISTRY#{subject}"
    else:
        subject, pk = event.connectionId, connection_pk(event.connectionId)
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


def put_event(table: Table, event: AuditEvent) -> Op:
    """The put of ``event``: an event is written once, never replaced."""
    return table.put(event_item(event), new=True)


class DynamoAuditLog:
    """The auditors' reads over the state table."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def query_connections(
        self, query: ConnectionQuery, limit: int, next_token: str | None
    ) -> Page[Connection]:
        """One Query on the index that serves the most selective filter (account, then space, then
        status, then all), newest first, by creation date."""
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
        kwargs = range_query(index, pk_name, sk_name, pk, query.created_from, query.created_to, filters)
        items, token = self.table.page(kwargs, pk_name, pk, limit, next_token)
        return Page([Connection.model_validate(item) for item in items], token)

    def query_events(self, query: EventQuery, limit: int, next_token: str | None) -> Page[AuditEvent]:
        """One Query, newest first: the connection's partition, else the actor's or all events."""
        if query.connection_id:
            pk_value = connection_pk(query.connection_id)
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
            items, token = self.table.page(kwargs, "pk", pk_value, limit, next_token)
        else:
            if query.actor:
                index, pk_name, sk_name, pk = "GSI1", "gsi1pk", "gsi1sk", f"ACTOR#{query.actor}"
            else:
                index, pk_name, sk_name, pk = "GSI4", "gsi4pk", "gsi4sk", ALL_EVENTS
            kwargs = range_query(index, pk_name, sk_name, pk, query.at_from, query.at_to, {})
            items, token = self.table.page(kwargs, pk_name, pk, limit, next_token)
        return Page([AuditEvent.model_validate(item) for item in items], token)

    def export_events(
        self, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
    ) -> Page[AuditEvent]:
        """One Query of GSI4's ``ALL#EVENT`` partition, oldest first."""
        kwargs = range_query("GSI4", "gsi4pk", "gsi4sk", ALL_EVENTS, at_from, at_to, {})
        kwargs["ScanIndexForward"] = True
        items, token = self.table.page(kwargs, "gsi4pk", ALL_EVENTS, limit, next_token)
        return Page([AuditEvent.model_validate(item) for item in items], token)
