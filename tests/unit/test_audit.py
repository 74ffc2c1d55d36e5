"""The audit logic that needs no table: date ranges, CSV, content negotiation, and the page."""

from __future__ import annotations

import csv
import io

import pytest

from account_connections.api.audit import wants_csv
from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.errors import InvalidRequest
from account_connections.logic.audit import time_range, to_csv


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, (None, None)),
        ("2026-11-01", None, ("2026-11-01T00:00:00.000Z", None)),
        (None, "2026-11-01", (None, "2026-11-01T23:59:59.999Z")),
        (
            "2026-11-01T10:00:00Z",
            "2026-11-01T10:00:00Z",
            ("2026-11-01T10:00:00.000Z", "2026-11-01T10:00:00.000Z"),
        ),
        ("2026-11-01T10:00:00+02:00", None, ("2026-11-01T08:00:00.000Z", None)),
        ("2026-11-01T10:00:00.123456", None, ("2026-11-01T10:00:00.123Z", None)),
        ("0001-01-01", "9999-12-31", ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")),
    ],
)
def test_time_range_in_the_tables_form(
    start: str | None, end: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert time_range(start, end) == expected


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-11-02", "2026-11-01", "from"),
        ("2026-11-01T00:00:00.001Z", "2026-11-01T00:00:00Z", "from"),
        ("nonsense", None, "from"),
        (None, "2026-11-31", "to"),
        ("0001-01-01T00:00:00+01:00", None, "from"),  # before the first representable instant
    ],
)
def test_time_range_refusals_name_the_field(start: str | None, end: str | None, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        time_range(start, end)
    assert [error["field"] for error in caught.value.errors] == [field]


def event(detail: str) -> AuditEvent:
    return AuditEvent(
        eventId="000001",
        connectionId="c",
        spaceId="demo",
        accountId="111122223333",
        type=EventType.REQUESTED,
        actor="alice",
        at="2026-11-01T00:00:00.000Z",
        detail=detail,
    )


@pytest.mark.parametrize(
    ("detail", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        ('quote " and, comma', 'quote " and, comma'),
        ("line\nbreak", "line\nbreak"),
    ],
)
def test_csv_cells_are_quoted_properly_and_never_formulas(detail: str, cell: str) -> None:
    text = to_csv(AuditEvent, [event(detail)])
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert header == list(AuditEvent.model_fields)
    assert dict(zip(header, row, strict=True))["detail"] == cell
    assert text.endswith("\r\n")


def test_csv_of_no_rows_is_the_header_alone() -> None:
    assert to_csv(AuditEvent, []) == ",".join(AuditEvent.model_fields) + "\r\n"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv", True),
        ("TEXT/CSV", True),
        ("text/csv;q=0.5, application/json", False),
        ("application/json;q=0.1, text/csv;q=0.2", True),
        ("text/csv;q=abc", False),
        ("", False),
        (None, False),
    ],
)
def test_wants_csv(accept: str | None, expected: bool) -> None:
    assert wants_csv(accept) is expected
