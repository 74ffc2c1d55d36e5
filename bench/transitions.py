"""State transitions and Lambda invocations per approved request, and what they cost.

One request is created, approved through the page's JSON decision and run to its end by moto's
Step Functions engine with the real ASL (``bench.inprocess``); its ``get_execution_history``
gives the states entered and exited, and a wrapper around moto's Lambda invoke counts the
workflow's Lambda invocations.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from bench.inprocess import workflow_stack
from bench.report import Section, Table

# Standard workflows, us-east-1 list price (AWS Step Functions pricing page), as given in the
# project's brief on 2026-11-26; not re-read from the web (the bench runs offline). The free tier
# (4,000 transitions a month) is ignored.
PRICE_PER_1000_TRANSITIONS_USD = 0.025
PRICE_SOURCE = (
    "AWS Step Functions pricing page, Standard workflows, us-east-1, as of 2026-11-26 (not re-checked)"
)
# The HTTP API's Lambda invocations in one approval: create, the administrator's page, the decision.
API_INVOCATIONS = {"RequesterApiFunction (create)": 1, "DecideConnectionFunction (page, decision)": 2}


def measure(stack: Any) -> dict[str, Any]:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    invocations: list[tuple[str, str]] = []  # (function name, payload)
    lock = threading.Lock()
    routed = LambdaSimpleBackend.invoke  # the fixture's: runs our handler for the function's name

    def counting(self: Any, function_name: str, qualifier: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
        payload = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
        with lock:
            invocations.append((function_name.split(":function:")[-1].split(":")[0], payload))
        return routed(self, function_name, qualifier, body, *args, **kwargs)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(LambdaSimpleBackend, "invoke", counting)
        connection_id, _ = stack.request(display_name="Transitions probe")
        email = stack.wait_for_email(count=len(stack.emails) + 1)
        page = stack.page(email.token)
        assert page["statusCode"] == 200, page
        decided = stack.approve(email.token)
        assert decided["statusCode"] == 200, decided
        execution = stack.wait_for_end(connection_id)
    # Only this request's: an execution left running by an earlier section of this process may invoke too.
    invoked = Counter(name for name, payload in invocations if connection_id in payload)
    history = stack.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)[
        "events"
    ]
    kinds = Counter(event["type"] for event in history)
    entered = [
        event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event
    ]
    return {
        "status": execution["status"],
        "connection_status": stack.item(connection_id)["status"]["S"]
        if isinstance(stack.item(connection_id)["status"], dict)
        else stack.item(connection_id)["status"],
        "entered": entered,
        "state_entered": sum(n for kind, n in kinds.items() if kind.endswith("StateEntered")),
        "state_exited": sum(n for kind, n in kinds.items() if kind.endswith("StateExited")),
        "events": len(history),
        "invoked": dict(invoked),
        "measured_at": time.time(),
    }


def run() -> Section:
    with workflow_stack() as (stack, _log):
        data = measure(stack)
    transitions = data["state_entered"]
    per_1000 = transitions * PRICE_PER_1000_TRANSITIONS_USD  # transitions per approval x $/1000 transitions
    section = Section(
        "3. State transitions and cost per approved request",
        "one request created, its page viewed and approved (form with CSRF), run to its end by moto's Step "
        "Functions engine with the real ASL and the real handlers as Lambda steps (in this process); "
        "`get_execution_history` of that execution gives the StateEntered/StateExited events; a wrapper on "
        "moto's Lambda invoke counts the workflow's invocations. Step Functions bills one state transition "
        "per state entered (every StateEntered event; its StateExited is the same transition). "
        f"Price: ${PRICE_PER_1000_TRANSITIONS_USD} per 1,000 state transitions ({PRICE_SOURCE}).",
    )
    section.tables.append(
        Table(
            "One approved request",
            ["measure", "value"],
            [
                ["execution status / connection status", f"{data['status']} / {data['connection_status']}"],
                ["states entered (in order)", " -> ".join(data["entered"])],
                ["StateEntered events = billed state transitions", transitions],
                ["StateExited events", data["state_exited"]],
                ["history events in all", data["events"]],
                ["Step Functions cost per 1,000 approvals (USD, list price)", f"${per_1000:.4f}"],
                ["Lambda invocations by the workflow", sum(data["invoked"].values())],
                ["  of which", ", ".join(f"{name} x{n}" for name, n in sorted(data["invoked"].items()))],
                ["Lambda invocations by the HTTP API", sum(API_INVOCATIONS.values())],
                ["  of which", ", ".join(f"{name} x{n}" for name, n in API_INVOCATIONS.items())],
                [
                    "Lambda invocations per approval in all",
                    sum(data["invoked"].values()) + sum(API_INVOCATIONS.values()),
                ],
            ],
        )
    )
    section.notes.append(
        "Cost counts Step Functions state transitions only (no Lambda, DynamoDB, SNS or API Gateway charges)."
    )
    return section
