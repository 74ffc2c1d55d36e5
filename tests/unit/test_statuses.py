"""The statuses and the only transitions SPEC.md allows between them."""

from __future__ import annotations

import itertools

import pytest

from account_connections.domain.statuses import (
    ALLOWED_TRANSITIONS,
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    ConnectionStatus,
    can_transition,
)

S = ConnectionStatus
# SPEC.md "Statuses", plus PENDING_APPROVAL -> FAILED for a workflow that cannot start or cannot
# reach the administrator (docs/architecture.md, "The workflow contract").
EXPECTED = {
    (S.PENDING_APPROVAL, S.APPROVED),
    (S.PENDING_APPROVAL, S.REJECTED),
    (S.PENDING_APPROVAL, S.EXPIRED),
    (S.PENDING_APPROVAL, S.CANCELLED),
    (S.PENDING_APPROVAL, S.FAILED),
    (S.APPROVED, S.VERIFIED),
    (S.APPROVED, S.FAILED),
    (S.VERIFIED, S.DISCONNECTED),
}


def test_every_status_has_an_entry() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(ConnectionStatus)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ConnectionStatus, repeat=2)))
def test_only_the_specified_transitions_are_possible(
    source: ConnectionStatus, target: ConnectionStatus
) -> None:
    assert can_transition(source, target) is ((source, target) in EXPECTED)


def test_terminal_and_live_statuses() -> None:
    assert TERMINAL_STATUSES == {S.DISCONNECTED, S.REJECTED, S.EXPIRED, S.CANCELLED, S.FAILED}
    assert LIVE_STATUSES == {S.PENDING_APPROVAL, S.APPROVED, S.VERIFIED}
    assert not LIVE_STATUSES & TERMINAL_STATUSES
