"""Domain errors. The API maps each class to one HTTP status in ``api.problems``; the
workflow steps let them surface as the Lambda error type that the state machine catches."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service raises on purpose. ``detail`` is safe to show a user."""

    title = "Request failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(DomainError):
    title = "Invalid request"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class NotAuthenticated(DomainError):
    title = "Not authenticated"


class NotAuthorized(DomainError):
    title = "Forbidden"


class SpaceNotFound(DomainError):
    title = "Space not found"


class ConnectionNotFound(DomainError):
    title = "Connection not found"


class MemberNotFound(DomainError):
    title = "Member not found"


class ApproverNotFound(DomainError):
    title = "Approver not found"


class RoleNotFound(DomainError):
    title = "Role not found"


class ConnectionAlreadyLive(DomainError):
    """The account already has a pending or verified connection in the space."""

    title = "Account already connected"


class ApproverNotRegistered(DomainError):
    """No administrator is registered for the account: nobody could approve the request."""

    title = "No administrator registered"


class ConnectionAlreadyDecided(DomainError):
    """A conditional write lost: the connection is no longer in the status the change needs."""

    title = "Connection state conflict"


class ApproverAlreadyDecided(ConnectionAlreadyDecided):
    """This approver has decided the request already (in this round): one decision each."""

    title = "Already decided"


class ApprovalsMoved(ConnectionAlreadyDecided):
    """Another approval was recorded between the read and the write: read again and decide anew
    (an approval may have become the one that reaches the quorum). Never reaches a caller."""


class RegistryConflict(DomainError):
    """Another operator changed the same registration or address meanwhile (a conditional write
    of the registry lost); retried from a fresh read, and answered 409 when it keeps losing."""

    title = "Registry changed concurrently"


class DigestRaced(DomainError):
    """Another run of the digest job stored a digest after the one this run read: this run's is
    not stored (the digests' chain stays one line). Never reaches a caller."""

    title = "Digest made by another run"


class IdempotencyKeyReused(DomainError):
    title = "Idempotency key reused"


class IdempotencyInProgress(DomainError):
    title = "Request in progress"


class RoleCheckFailed(DomainError):
    """A role ARN failed a check of SPEC.md's Roles section: the message says which."""

    title = "Role check failed"


class VerificationTokenNotFound(DomainError):
    title = "Unknown link"


class VerificationTokenGone(DomainError):
    """The link was used, expired, cancelled or replaced: ``reason`` says which."""

    title = "Link no longer valid"

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class VerificationFailed(DomainError):
    """The approved request cannot be verified (it changed, or the account is live elsewhere)."""

    title = "Verification failed"


class ConnectionNotPending(DomainError):
    """The workflow reached the approval step for a request that is no longer pending."""

    title = "Connection not pending"


class TaskAlreadyClosed(DomainError):
    """Step Functions no longer waits for this task (it was decided, timed out or stopped)."""

    title = "Workflow no longer waiting"


class WorkflowUnavailable(DomainError):
    """The approval workflow could not be started; the request was marked FAILED."""

    title = "Workflow unavailable"


class DecisionFormStale(DomainError):
    """The decision form does not match the request as it now stands (changed since shown, or a
    form this service did not issue): the administrator must open the link again."""

    title = "Form out of date"


class DecisionNotReady(DomainError):
    """The workflow has not reached the approval step yet, so there is nothing to answer."""

    title = "Not ready for a decision"


class DependencyUnavailable(DomainError):
    """An AWS dependency was throttled or failed transiently: the workflow retries the step."""

    title = "Dependency unavailable"


class PayloadTooLarge(DomainError):
    title = "Payload too large"


class AccountProofRefused(NotAuthorized):
    """An account proof is missing, malformed, or does not prove a principal that may decide."""

    title = "Account proof refused"


class TooManyLinks(DomainError):
    """Links are rate-limited: at most one new link a minute and ten in all per request.
    ``retry_after``: seconds until the next link may go (None once all ten are used)."""

    title = "Too many links"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class TooManyRoles(DomainError):
    """A connection records at most 10 roles at any time (attached or refused: both are stored)."""

    title = "Too many roles"
