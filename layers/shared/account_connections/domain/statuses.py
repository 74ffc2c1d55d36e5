"""The connection statuses and the only transitions between them (SPEC.md, "Statuses")."""

from __future__ import annotations

from enum import StrEnum


class ConnectionStatus(StrEnum):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    VERIFIED = "VERIFIED"
    DISCONNECTED = "DISCONNECTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


S = ConnectionStatus

ALLOWED_TRANSITIONS: dict[ConnectionStatus, frozenset[ConnectionStatus]] = {
    # FAILED from pending: the workflow could not start, or could not reach the administrator
    # (docs/architecture.md, "The workflow contract").
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.EXPIRED, S.CANCELLED, S.FAILED}),
    S.APPROVED: frozenset({S.VERIFIED, S.FAILED}),
    S.VERIFIED: frozenset({S.DISCONNECTED}),
    S.DISCONNECTED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}

# A live connection holds the account in its space: no second request may be made meanwhile.
LIVE_STATUSES: frozenset[ConnectionStatus] = frozenset({S.PENDING_APPROVAL, S.APPROVED, S.VERIFIED})
TERMINAL_STATUSES: frozenset[ConnectionStatus] = frozenset(
    status for status, targets in ALLOWED_TRANSITIONS.items() if not targets
)


def can_transition(source: ConnectionStatus, target: ConnectionStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[source]
