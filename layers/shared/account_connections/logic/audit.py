"""Auditors' logic: every connection and every audit event, by status, space, account, actor and
date, as JSON pages or CSV.

Each page is one query of the ``AuditLog`` port (in DynamoDB, one Query on the index that serves
it); nothing here scans.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, StringConstraints

from account_connections.domain.audit import AuditEvent, AuditEventPage
from account_connections.domain.connection import ConnectionPage
from account_connections.domain.errors import InvalidRequest
from account_connections.domain.statuses import ConnectionStatus
from account_connections.ports import AuditLog, ConnectionQuery, EventQuery, Page

# A cell that starts with one of these is a formula to a spreadsheet: it is prefixed with "'".
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _parse_instant(value: str) -> tuple[datetime, bool]:
    """``value`` as an aware UTC datetime, and whether it named a whole day.
    Raises ``ValueError`` unless it is an ISO 8601 date or date-time."""
    text = value.strip()
    try:
        if "T" not in text.upper() and " " not in text:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.min, tzinfo=UTC), True
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC), False
    except (ValueError, OverflowError) as exc:
        raise ValueError("must be an ISO 8601 date (2026-11-26) or date-time (2026-11-26T07:00:00Z)") from exc


def _check_instant(value: str) -> str:
    _parse_instant(value)
    return value


# A query parameter that must be an ISO 8601 date or date-time; a date-time without an offset is UTC.
Instant = Annotated[str, StringConstraints(max_length=40), AfterValidator(_check_instant)]


def _stored_form(moment: datetime) -> str:
    """The table's own timestamp form (``isoformat`` of models), so that bounds compare as strings."""
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def time_range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """Inclusive bounds in the table's timestamp form. A date as ``from`` starts at its first
    millisecond, as ``to`` ends at its last. Raises ``InvalidRequest`` when ``from`` > ``to``."""
    low = high = None
    try:
        if start is not None:
            low = _stored_form(_parse_instant(start)[0])
        if end is not None:
            moment, whole_day = _parse_instant(end)
            if whole_day:
                moment = datetime.combine(moment.date(), time.max, tzinfo=UTC)
            high = _stored_form(moment)
    except ValueError as exc:
        field = "from" if low is None and start is not None else "to"
        raise InvalidRequest(
            "the date range is not valid", errors=[{"field": field, "message": str(exc)}]
        ) from exc
    if low is not None and high is not None and low > high:
        raise InvalidRequest(
            "the date range is empty", errors=[{"field": "from", "message": "must not be later than to"}]
        )
    return low, high


def query_connections(
    log: AuditLog,
    *,
    status: ConnectionStatus | None,
    space_id: str | None,
    account_id: str | None,
    created_from: str | None,
    created_to: str | None,
    limit: int,
    next_token: str | None,
) -> ConnectionPage:
    """Connections created in the range, newest first. Raises ``InvalidRequest`` (dates, token)."""
    low, high = time_range(created_from, created_to)
    query = ConnectionQuery(
        status=status, space_id=space_id, account_id=account_id, created_from=low, created_to=high
    )
    page = log.query_connections(query, limit, next_token)
    return ConnectionPage(items=page.items, nextToken=page.next_token)


def query_events(
    log: AuditLog,
    *,
    connection_id: str | None,
    actor: str | None,
    at_from: str | None,
    at_to: str | None,
    limit: int,
    next_token: str | None,
) -> AuditEventPage:
    """Audit events in the range, newest first. Raises ``InvalidRequest`` (dates, token)."""
    low, high = time_range(at_from, at_to)
    query = EventQuery(connection_id=connection_id, actor=actor, at_from=low, at_to=high)
    page = log.query_events(query, limit, next_token)
    return AuditEventPage(items=page.items, nextToken=page.next_token)


def export_events(
    log: AuditLog, *, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
) -> Page[AuditEvent]:
    """Every event in the range, oldest first, each chain in ``seq`` order. Raises
    ``InvalidRequest`` (dates, token)."""
    low, high = time_range(at_from, at_to)
    return log.export_events(low, high, limit, next_token)


def as_json_lines(events: list[AuditEvent]) -> str:
    """One event a line, as stored (fields without a value left out: the canonical form ignores
    them), each line ended by a newline."""
    return "".join(event.model_dump_json(exclude_none=True) + "\n" for event in events)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = " ".join(str(part) for part in value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(model: type[BaseModel], rows: Iterable[BaseModel]) -> str:
    """RFC 4180 CSV: a header of ``model``'s fields, then one line per row. Cells that a
    spreadsheet would run as a formula are neutralised with a leading quote."""
    columns = list(model.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_cell(data.get(column)) for column in columns])
    return buffer.getvalue()
