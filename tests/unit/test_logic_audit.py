"""Auditors' use cases over the fakes: the dates they give become the table's bounds, the filters
reach the audit log as given, and each answer is one page of it."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeAlias

import pytest

from account_connections.domain.audit import EventType
from account_connections.domain.errors import InvalidRequest
from account_connections.domain.statuses import ConnectionStatus
from account_connections.logic.audit import query_connections, query_events
from account_connections.ports import ConnectionQuery, EventQuery
from tests.builders import ACCOUNT, OTHER_SPACE, SPACE, connection
from tests.fakes import InMemoryAuditLog, InMemoryConnections
from tests.unit.world import World

S: TypeAlias = ConnectionStatus


def test_connection_filters_and_dates_reach_the_log_as_one_query() -> None:
    log = InMemoryAuditLog(InMemoryConnections())
    query_connections(log, status=S.VERIFIED, space_id=SPACE, account_id=ACCOUNT, created_from="2026-11-01",
                      created_to="2026-11-30", limit=25, next_token=None)  # fmt: skip
    assert log.queries == [ConnectionQuery(
        status=S.VERIFIED, space_id=SPACE, account_id=ACCOUNT,
        created_from="2026-11-01T00:00:00.000Z", created_to="2026-11-30T23:59:59.999Z",
    )]  # fmt: skip


def test_event_filters_and_dates_reach_the_log_as_one_query() -> None:
    log = InMemoryAuditLog(InMemoryConnections())
    query_events(log, connection_id="c-1", actor="alice", at_from="2026-11-01T10:00:00+02:00", at_to=None,
                 limit=5, next_token=None)  # fmt: skip
    assert log.queries == [EventQuery(connection_id="c-1", actor="alice", at_from="2026-11-01T08:00:00.000Z")]


def test_an_empty_range_is_refused_before_any_query() -> None:
    log = InMemoryAuditLog(InMemoryConnections())
    with pytest.raises(InvalidRequest) as refused:
        query_events(log, connection_id=None, actor=None, at_from="2026-11-02", at_to="2026-11-01", limit=5,
                     next_token=None)  # fmt: skip
    assert [error["field"] for error in refused.value.errors] == ["from"] and log.queries == []


def test_auditors_see_every_space_newest_first_page_by_page() -> None:
    old = connection(S.VERIFIED, created_ago=timedelta(days=2))
    new = connection(space_id=OTHER_SPACE, created_ago=timedelta(hours=1))
    log = InMemoryAuditLog(InMemoryConnections(old, new))
    first = query_connections(log, status=None, space_id=None, account_id=ACCOUNT, created_from=None,
                              created_to=None, limit=1, next_token=None)  # fmt: skip
    assert [c.connectionId for c in first.items] == [new.connectionId] and first.nextToken
    rest = query_connections(log, status=None, space_id=None, account_id=ACCOUNT, created_from=None,
                             created_to=None, limit=1, next_token=first.nextToken)  # fmt: skip
    assert [c.connectionId for c in rest.items] == [old.connectionId] and rest.nextToken is None
    with pytest.raises(InvalidRequest):  # a token of another query
        query_connections(log, status=S.VERIFIED, space_id=None, account_id=None, created_from=None,
                          created_to=None, limit=1, next_token=first.nextToken)  # fmt: skip


def test_every_change_is_in_the_events_by_connection_and_by_actor(world: World) -> None:
    created, _ = world.waiting()
    world.registry.events.clear()

    def events(**query: str | None) -> list[EventType]:
        page = query_events(world.audit, connection_id=query.get("connection_id"), actor=query.get("actor"),
                            at_from=None, at_to=None, limit=50, next_token=None)  # fmt: skip
        return sorted(event.type for event in page.items)

    assert events(connection_id=created.connectionId) == [EventType.LINK_SENT, EventType.REQUESTED]
    assert events(actor="alice") == [EventType.REQUESTED]
    assert events(actor="system") == [EventType.LINK_SENT]
