"""Approval policies (SPEC.md, "Approval policy: quorum, reminders, escalation"): who approves an
account's requests, how many of them must, when the undecided are reminded and when the request
escalates, and the timers the approval workflow runs from them.

A request is approved when ``quorum`` distinct approvers have approved it; one rejection rejects
it. Each approver gets a link of their own. While the request is pending, every approver who has
not decided gets a reminder (a new link; the old one dies) after each of ``remindAfterSeconds``;
after ``escalateAfterSeconds`` without quorum, the addresses of ``escalateTo`` get links and count
as approvers of that request. Every offset counts from the request's creation.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from account_connections.domain.errors import DomainError
from account_connections.domain.fields import Email, Model, PrincipalArn, StrictModel
from account_connections.domain.limits import LINK_INTERVAL, MAX_LINKS

MAX_APPROVERS = 10
# A reminder is a new link: with the first, at most MAX_LINKS per approver, one a minute at most.
MAX_REMINDERS = MAX_LINKS - 1
MIN_DELAY_SECONDS = int(LINK_INTERVAL.total_seconds())

Seconds = Annotated[int, Field(ge=MIN_DELAY_SECONDS, le=31536000)]


class ApprovalPolicy(Model):
    """An account's policy as the registry keeps it and a request carries it (its snapshot)."""

    approvers: list[str]
    quorum: int = 1
    remindAfterSeconds: list[int] = Field(default_factory=list)
    escalateAfterSeconds: int | None = None
    escalateTo: list[str] = Field(default_factory=list)
    approverPrincipals: list[str] = Field(default_factory=list)

    def addresses(self) -> list[str]:
        """Every address that may get a link: the approvers, then the escalation's."""
        return [*self.approvers, *self.escalateTo]

    def deciders(self, escalated: bool) -> list[str]:
        """Who may decide now: the approvers, and once escalated the escalation's too."""
        return self.addresses() if escalated else list(self.approvers)

    def describe(self) -> str:
        """The policy in one line, as the registry's audit events name it, e.g. ``policy: approvers
        a@x, b@x; quorum 2; reminders 3600, 7200 s; escalate to c@x after 86400 s``."""
        parts = [f"approvers {', '.join(self.approvers)}", f"quorum {self.quorum}"]
        if self.remindAfterSeconds:
            parts.append(f"reminders {', '.join(str(delay) for delay in self.remindAfterSeconds)} s")
        if self.escalateTo:
            parts.append(f"escalate to {', '.join(self.escalateTo)} after {self.escalateAfterSeconds} s")
        if self.approverPrincipals:
            parts.append(f"principals {', '.join(self.approverPrincipals)}")
        return "policy: " + "; ".join(parts)


# What a request copies of its account's policy when it is stored: the quorum (its own, and its
# connection token's), the principals an account proof must come from (its connection token's),
# and what its timers are made of (the workflow's input). The approvers' addresses are not among
# them: the first links read the policy again (``logic.links.first_links``).
COPIED_AT_CREATE = (
    "quorum",
    "approverPrincipals",
    "remindAfterSeconds",
    "escalateAfterSeconds",
    "escalateTo",
)
# The plain policy's values of those: one approval, no principals, no reminder, no escalation.
# Constructed, not validated (constant values): importing it builds no validator (``Model``).
PLAIN = ApprovalPolicy.model_construct(approvers=[])


def copied_at_create(policy: ApprovalPolicy) -> dict[str, object]:
    """The fields of ``policy`` that a request copies when it is stored (``COPIED_AT_CREATE``)."""
    return {name: getattr(policy, name) for name in COPIED_AT_CREATE}


class RegisteredPolicyDiffers(DomainError):
    """A create assumed a policy for the account (what the request copies of it) that is not the
    one registered: ``policy`` is the registered one, and the create is written again with it.
    Never reaches a caller."""

    def __init__(self, detail: str, policy: ApprovalPolicy) -> None:
        super().__init__(detail)
        self.policy = policy


class PutApproverRequest(StrictModel):
    """``PUT /approvers/{accountId}``: ``{email}`` (one administrator) or a policy (``approvers`` and
    the rest). Rules across fields are checked by ``problems``."""

    model_config = ConfigDict(
        title="PutApproverRequest",
        json_schema_extra={
            "description": "Either `{email}` (one administrator; `approverPrincipals` may come with "
            "it) or an approval policy: `approvers` with, optionally, `quorum`, `remindAfterSeconds`, "
            "`escalateAfterSeconds` with `escalateTo`, and `approverPrincipals`. Timers count from "
            "the request and must fall before the approval window closes.",
            "examples": [
                {"email": "admin@example.com"},
                {
                    "approvers": ["ops1@example.com", "ops2@example.com", "ops3@example.com"],
                    "quorum": 2,
                    "remindAfterSeconds": [86400, 172800],
                    "escalateAfterSeconds": 259200,
                    "escalateTo": ["security@example.com"],
                    "approverPrincipals": ["arn:aws:iam::111122223333:role/Admin"],
                },
            ],
        },
    )

    email: Email | None = Field(default=None, description="One administrator: the plain policy.")
    approvers: list[Email] | None = Field(
        default=None, min_length=1, max_length=MAX_APPROVERS,
        description="The approvers' addresses (1-10), each emailed a link of their own.",
    )  # fmt: skip
    quorum: int | None = Field(
        default=None, ge=1, le=MAX_APPROVERS,
        description="How many distinct approvers must approve (1 to the number of approvers; default 1).",
    )  # fmt: skip
    remindAfterSeconds: list[Seconds] = Field(
        default_factory=list, max_length=MAX_REMINDERS,
        description="When, counted from the request, each approver who has not decided gets a reminder "
        "with a new link: ascending, each at least 60 and at least 60 after the one before.",
    )  # fmt: skip
    escalateAfterSeconds: Seconds | None = Field(
        default=None,
        description="When, counted from the request, escalateTo get links and count as approvers, "
        "if the quorum is not reached by then (at least 60).",
    )
    escalateTo: list[Email] = Field(
        default_factory=list, max_length=MAX_APPROVERS,
        description="The escalation's addresses; needs escalateAfterSeconds.",
    )  # fmt: skip
    approverPrincipals: list[PrincipalArn] = Field(
        default_factory=list, max_length=10,
        description="When given, an account proof counts only from one of these IAM roles or users "
        "of the account (an assumed role matches its role).",
    )  # fmt: skip

    def policy(self) -> ApprovalPolicy:
        """The policy asked for (call after ``problems`` found none)."""
        approvers = list(self.approvers) if self.approvers else [self.email or ""]
        return ApprovalPolicy(
            approvers=approvers, quorum=self.quorum or 1, remindAfterSeconds=list(self.remindAfterSeconds),
            escalateAfterSeconds=self.escalateAfterSeconds, escalateTo=list(self.escalateTo),
            approverPrincipals=list(self.approverPrincipals),
        )  # fmt: skip

    def problems(self, window_seconds: int) -> list[dict[str, str]]:
        """What is wrong across fields, each naming its field; ``window_seconds`` is the approval
        window (ApprovalTimeoutSeconds): a timer at or past it would never fire."""
        found: list[dict[str, str]] = []

        def problem(field: str, message: str) -> None:
            found.append({"field": field, "message": message})

        if (self.email is None) == (self.approvers is None):
            problem("approvers", "give either email (one administrator) or approvers (a policy), not both")
            return found
        if self.email is not None:
            for name in ("quorum", "escalateAfterSeconds"):
                if getattr(self, name) is not None:
                    problem(name, "needs approvers: a policy lists its approvers, not email")
            for name in ("remindAfterSeconds", "escalateTo"):
                if getattr(self, name):
                    problem(name, "needs approvers: a policy lists its approvers, not email")
            return found
        approvers = self.approvers or []
        seen: dict[str, str] = {}
        for field, addresses in (("approvers", approvers), ("escalateTo", self.escalateTo)):
            for index, address in enumerate(addresses):
                key = address.strip().casefold()
                if key in seen:
                    problem(f"{field}[{index}]", f"{address} is listed twice (first in {seen[key]})")
                seen.setdefault(key, f"{field}[{index}]")
        if self.quorum is not None and self.quorum > len(approvers):
            problem("quorum", f"must be at most the number of approvers ({len(approvers)})")
        too_late = f"must be less than the approval window ({window_seconds} s)"
        previous: int | None = None
        for index, delay in enumerate(self.remindAfterSeconds):
            if previous is not None and delay < previous + MIN_DELAY_SECONDS:
                problem(f"remindAfterSeconds[{index}]", "must be ascending, each at least 60 after the one "
                        "before (at most one link a minute)")  # fmt: skip
            if delay >= window_seconds:
                problem(f"remindAfterSeconds[{index}]", too_late)
            previous = delay
        if (self.escalateAfterSeconds is None) != (not self.escalateTo):
            problem("escalateTo" if self.escalateAfterSeconds is not None else "escalateAfterSeconds",
                    "escalateAfterSeconds and escalateTo go together")  # fmt: skip
        if self.escalateAfterSeconds is not None and self.escalateAfterSeconds >= window_seconds:
            problem("escalateAfterSeconds", too_late)
        return found


# ---- the workflow's timers -----------------------------------------------------------------------


class Timer(Model):
    """One wait of the approval workflow: ``seconds`` long, then what it does when it fires (remind,
    escalate, or, the last one, expire). ``number`` counts the workflow's rounds (0: the first
    link)."""

    number: int
    seconds: int
    remind: bool = False
    escalate: bool = False
    expire: bool = False


# Constructed, not validated, as PLAIN is.
FIRST_ROUND = Timer.model_construct(number=0, seconds=0)


def timers(policy: ApprovalPolicy, window_seconds: int) -> list[Timer]:
    """The waits of a request under ``policy`` with an approval window of ``window_seconds``: one per
    distinct offset of a reminder or the escalation, in order, then the last until the window
    closes. The plain policy has one timer: the window."""
    marks: dict[int, set[str]] = {}
    for delay in policy.remindAfterSeconds:
        marks.setdefault(delay, set()).add("remind")
    if policy.escalateAfterSeconds is not None and policy.escalateTo:
        marks.setdefault(policy.escalateAfterSeconds, set()).add("escalate")
    result: list[Timer] = []
    at = 0
    for offset in sorted(mark for mark in marks if 0 < mark < window_seconds):
        kinds = marks[offset]
        result.append(Timer(number=len(result) + 1, seconds=offset - at, remind="remind" in kinds,
                            escalate="escalate" in kinds))  # fmt: skip
        at = offset
    result.append(Timer(number=len(result) + 1, seconds=max(1, window_seconds - at), expire=True))
    return result
