"""State transitions and Lambda invocations per approved request, and what they cost, for the
plain policy, a quorum of two, and a request that got a reminder and an escalation.

Each request is created, approved through its links' JSON decisions and run to its end by moto's
Step Functions engine with the real ASL (``bench.inprocess``), its timers on the real clock; its
``get_execution_history`` gives the states entered and exited, and a wrapper around moto's
Lambda invoke counts the workflow's Lambda invocations.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from bench.inprocess import workflow_stack
from bench.report import Section, Table, Target

# Standard workflows, us-east-1 list price (AWS Step Functions pricing page), as given in the
# project's brief on 2026-11-26; not re-read from the web (the bench runs offline). The free tier
# (4,000 transitions a month) is ignored.
PRICE_PER_1000_TRANSITIONS_USD = 0.025
PRICE_SOURCE = (
    "AWS Step Functions pricing page, Standard workflows, us-east-1, as of 2026-11-26 (not re-checked)"
)


# Lambda requests, arm64, us-east-1 list price (AWS Lambda pricing page), as given in the brief on
# 2026-11-26; duration (GB-seconds) is left out: it depends on the deployment's memory setting.
PRICE_PER_MILLION_LAMBDA_REQUESTS_USD = 0.20
OPS, BACKUP = "ops@example.com", "backup@example.com"
# The scenario with timers: a reminder after a minute, the escalation after two, within a window
# that stays open; the bench waits for both, so this scenario sets the section's duration.
REMIND_AFTER, ESCALATE_AFTER, TIMED_WINDOW = 60, 120, 900


@dataclass(frozen=True)
class Scenario:
    name: str
    account_id: str
    policy: dict[str, Any]
    # Who approves, in order, and after how many of their links (a reminder is a second link).
    approvals: tuple[tuple[str, int], ...]
    window: int = 3600


def scenarios() -> list[Scenario]:
    from tests.workflow.conftest import ADMIN_ACCOUNT, ADMIN_EMAIL, OTHER_ACCOUNT

    return [
        Scenario("plain policy (one administrator)", ADMIN_ACCOUNT, {"approvers": [ADMIN_EMAIL]},
                 ((ADMIN_EMAIL, 1),)),
        Scenario("quorum 2 (two approvers)", ADMIN_ACCOUNT, {"approvers": [ADMIN_EMAIL, OPS], "quorum": 2},
                 ((ADMIN_EMAIL, 1), (OPS, 1))),
        Scenario(
            "one reminder, then the escalation; the backup approves", OTHER_ACCOUNT,
            {"approvers": [ADMIN_EMAIL], "remindAfterSeconds": [REMIND_AFTER],
             "escalateAfterSeconds": ESCALATE_AFTER, "escalateTo": [BACKUP]},
            ((BACKUP, 1),), window=TIMED_WINDOW,
        ),
    ]  # fmt: skip


def _link(stack: Any, address: str, connection_id: str, nth: int, timeout: float) -> str:
    """The ``nth`` link ``address`` received about ``connection_id`` (waiting up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        stack._drain("approvals", stack.emails)
        stack._drain("other-admin", stack.emails)
        links = [
            email.token for email in list(stack.emails)
            if address in email.recipients and "/verify?token=" in email.body
            and f"Connection:    {connection_id}" in email.body
        ]  # fmt: skip
        if len(links) >= nth:
            return links[nth - 1]
        if time.monotonic() > deadline:
            raise AssertionError(f"{address} got {len(links)} of {nth} links about {connection_id}")
        time.sleep(0.2)


def _run(stack: Any, scenario: Scenario, lock: threading.Lock) -> dict[str, Any]:
    from account_connections.adapters.stepfunctions import StepFunctionsWorkflow
    from account_connections.domain.access import Principal
    from account_connections.domain.connection import CreateConnectionRequest
    from account_connections.domain.registry import Approver, Member, Space, SpaceRole
    from account_connections.logic.connections import create_connection
    from tests.workflow.conftest import BASE_URL

    stamp = {"updatedAt": "2026-11-01T00:00:00.000Z", "updatedBy": "bench"}
    # A space per scenario (an account has one live connection per space), alice its admin: the
    # create checks her role.
    space_id = f"bench-{len(scenario.approvals)}-{scenario.window}"
    with lock:
        stack.registry.put_approver(Approver(accountId=scenario.account_id, **scenario.policy, **stamp))
        stack.registry.put_space(Space(spaceId=space_id, name=space_id, **stamp))
        stack.registry.put_member(
            Member(spaceId=space_id, userId="alice", role=SpaceRole.SPACE_ADMIN, **stamp)
        )
        created = create_connection(
            stack.connections, StepFunctionsWorkflow(stack.sfn, stack.state_machine),
            Principal(sub="alice", groups=frozenset()), space_id,
            CreateConnectionRequest(accountId=scenario.account_id, displayName=scenario.name[:100]),
            approval_timeout_seconds=scenario.window, verify_base_url=BASE_URL, correlation_id="bench",
        )  # fmt: skip
    connection_id = created.connectionId
    timed = scenario.window == TIMED_WINDOW
    for address, nth in scenario.approvals:
        token = _link(stack, address, connection_id, nth, ESCALATE_AFTER + 60 if timed else 20)
        page = stack.page(token)
        assert page["statusCode"] == 200, page
        decided = stack.approve(token)
        assert decided["statusCode"] == 200, decided
    execution = stack.wait_for_end(connection_id, timeout=60)
    history = stack.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
        "events"
    ]
    kinds = Counter(event["type"] for event in history)
    entered = [
        event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event
    ]
    _, _, events = stack.connections.detail(connection_id)
    return {
        "scenario": scenario.name,
        "connection_id": connection_id,
        "status": execution["status"],
        "connection_status": str(stack.connections.get(connection_id).status),
        "entered": entered,
        "state_entered": sum(n for kind, n in kinds.items() if kind.endswith("StateEntered")),
        "state_exited": sum(n for kind, n in kinds.items() if kind.endswith("StateExited")),
        "events": len(history),
        "links": sum(1 for e in events if e.type.value in ("LINK_SENT", "REMINDED")),
        "history": Counter(e.type.value for e in events),
        "decisions": len(scenario.approvals),
    }


def measure(stack: Any) -> list[dict[str, Any]]:
    """Every scenario, the timed one on a thread from the start (its minutes overlap the others)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    invocations: list[tuple[str, str]] = []  # (function name, payload)
    record = threading.Lock()
    routed = LambdaSimpleBackend.invoke  # the fixture's: runs our handler for the function's name

    def counting(self: Any, function_name: str, qualifier: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
        payload = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
        with record:
            invocations.append((function_name.split(":function:")[-1].split(":")[0], payload))
        return routed(self, function_name, qualifier, body, *args, **kwargs)

    plain, quorum, timed = scenarios()
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []
    setup = threading.Lock()

    def run_timed() -> None:
        try:
            results[timed.name] = _run(stack, timed, setup)
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", counting)
        thread = threading.Thread(target=run_timed, name="timed-scenario")
        thread.start()
        for scenario in (plain, quorum):
            results[scenario.name] = _run(stack, scenario, setup)
        thread.join()
    if errors:
        raise errors[0]
    measured = []
    for scenario in (plain, quorum, timed):
        data = results[scenario.name]
        # Only this request's: executions of other scenarios (and earlier sections) invoke too.
        data["invoked"] = dict(
            Counter(name for name, payload in invocations if data["connection_id"] in payload)
        )
        measured.append(data)
    return measured


def run() -> Section:
    with workflow_stack() as (stack, _log):
        measured = measure(stack)
    section = Section(
        "3. State transitions and cost per approved request",
        "each scenario's request created, its links' pages viewed and approved, run to its end by moto's "
        "Step Functions engine with the real ASL and the real handlers as Lambda steps (in this process), "
        "its timers on the real clock (reminder after "
        f"{REMIND_AFTER} s, escalation after {ESCALATE_AFTER} s); `get_execution_history` of each execution "
        "gives the StateEntered/StateExited events; a wrapper on moto's Lambda invoke counts the workflow's "
        "invocations. Step Functions bills one state transition per state entered (every StateEntered event; "
        f"its StateExited is the same transition). Prices: ${PRICE_PER_1000_TRANSITIONS_USD} per 1,000 state "
        f"transitions ({PRICE_SOURCE}); ${PRICE_PER_MILLION_LAMBDA_REQUESTS_USD} per million Lambda requests "
        "(AWS Lambda pricing page, as of 2026-11-26, not re-checked).",
    )
    rows: list[Sequence[Any]] = []
    for data in measured:
        transitions = data["state_entered"]
        api = 1 + 2 * data["decisions"]  # the create; each approver's page and decision
        lambdas = sum(data["invoked"].values()) + api
        sfn_cost = transitions * PRICE_PER_1000_TRANSITIONS_USD
        lambda_cost = lambdas * PRICE_PER_MILLION_LAMBDA_REQUESTS_USD / 1000
        rows.append([
            data["scenario"], f"{data['status']} / {data['connection_status']}", transitions,
            ", ".join(f"{name} x{n}" for name, n in sorted(data["invoked"].items())), lambdas, data["links"],
            f"${sfn_cost:.4f}", f"${sfn_cost + lambda_cost:.4f}",
        ])  # fmt: skip
    section.tables.append(Table(
        "Per approved request",
        ["scenario", "execution / connection", "state transitions", "workflow's Lambda invocations",
         "Lambda invocations in all (with the API's)", "links emailed", "Step Functions per 1,000 (USD)",
         "with Lambda requests per 1,000 (USD)"],
        rows,
    ))  # fmt: skip
    section.tables.append(Table(
        "States entered, in order",
        ["scenario", "states"],
        [[data["scenario"], " -> ".join(data["entered"])] for data in measured],
    ))  # fmt: skip
    plain = measured[0]["state_entered"]
    quorum_cost = measured[1]["state_entered"]
    section.targets.append(Target(
        "the plain path at most 8 state transitions, a quorum none more", plain <= 8 and quorum_cost == plain,
        f"plain {plain}, quorum 2 {quorum_cost}, a reminder and an escalation {measured[2]['state_entered']}",
    ))  # fmt: skip
    section.notes.append(
        f"The plain path enters {plain} states (the brief's bound: at most 8; before the policies, 6). A "
        "quorum costs no transition (approvals short of it never wake the workflow); each timer that fires "
        "costs three (TimerFired, NextTimer, the wait's step entered anew) and one Lambda invocation."
    )
    section.notes.append(
        "Cost counts Step Functions state transitions and Lambda requests (no Lambda duration, DynamoDB, SNS "
        "or API Gateway charges)."
    )
    return section
