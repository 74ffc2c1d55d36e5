"""The payloads the state machine sends each step and what the steps answer
(``statemachine/connection_approval.asl.json``; examples in ``events/sfn_*.json``)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import ConfigDict, SecretStr

from account_connections.domain.connection import Approval, Connection
from account_connections.domain.fields import Model
from account_connections.domain.policy import FIRST_ROUND, Timer
from account_connections.domain.statuses import ConnectionStatus


class StepInput(Model):
    """Every step gets the connection and the correlation id of the request that created it."""

    model_config = ConfigDict(extra="forbid")

    connectionId: str
    correlationId: str = ""


class NotifyApproverInput(StepInput):
    verifyBaseUrl: str
    # SecretStr: the task token never shows in a repr, a log line or a validation error.
    taskToken: SecretStr
    # The timer that fired and made the workflow wait anew (number 0: the first wait).
    round: Timer = FIRST_ROUND


class Decision(Model):
    """What the decision sent with SendTaskSuccess (``logic.approval.decision_output``)."""

    authorizePaidTiers: bool = False
    decidedBy: str | None = None
    decidedAt: str | None = None
    requestDigest: str


class VerifyConnectionInput(StepInput):
    decision: Decision


class AttachRolesInput(StepInput):
    pass


class StepError(Model):
    """A ``Catch``'s ``ResultPath`` content: the error name and its cause."""

    Error: str | None = None
    Cause: str | None = None

    def reason(self) -> str:
        """``<Error>: <message>``, the message taken from a Lambda error payload when there is one."""
        message = self.Cause or ""
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            message = str(parsed["errorMessage"])
        text = f"{self.Error}: {message}" if message else self.Error or "the workflow failed"
        return text[:1000]


class RecordOutcomeInput(StepInput):
    # ENDED: read back how the request ended (cancelled, or ended before the workflow's first wait).
    outcome: Literal["VERIFIED", "EXPIRED", "FAILED", "REJECTED", "ENDED"]
    paidTiersAuthorized: bool | None = None
    error: StepError | None = None


class VerifyConnectionOutput(Model):
    connectionId: str
    verified: bool


class RejectedRole(Model):
    roleArn: str
    roleName: str
    reason: str


class AttachRolesOutput(Model):
    attached: list[str]
    rejected: list[RejectedRole]


class NotifyApproverOutput(Model):
    connectionId: str
    sentAt: str


class OutcomeEvent(Model):
    """The requester's notice on the events topic: how the request ended, and why."""

    connectionId: str
    spaceId: str
    accountId: str
    displayName: str
    requestedBy: str
    status: ConnectionStatus
    at: str
    reason: str | None = None
    decidedBy: str | None = None
    paidTiersAuthorized: bool | None = None
    verifiedAt: str | None = None
    decisionMethod: str | None = None
    quorum: int = 1
    approvals: list[Approval] = []

    @classmethod
    def of(cls, connection: Connection) -> OutcomeEvent:
        return cls(
            connectionId=connection.connectionId,
            spaceId=connection.spaceId,
            accountId=connection.accountId,
            displayName=connection.displayName,
            requestedBy=connection.requestedBy,
            status=connection.status,
            at=connection.updatedAt,
            reason=connection.reason,
            decidedBy=connection.decidedBy,
            paidTiersAuthorized=connection.paidTiersAuthorized,
            verifiedAt=connection.verifiedAt,
            decisionMethod=connection.decisionMethod,
            quorum=connection.quorum,
            approvals=connection.approvals,
        )
