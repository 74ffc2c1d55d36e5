"""AWS calls per operation, counted at the botocore level against moto in this process.

Each operation runs its real handler on a real event from events/; a ``before-call`` hook on the
default boto3 session (which the handlers' clients inherit) records service.operation for the
calling thread only, so the workflow's own steps (moto runs them on other threads) are not
counted against the HTTP operation.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.inprocess import CallLog, workflow_stack
from bench.report import Section, Table, Target
from local.seed_data import AUDITOR, OPERATOR

KEYED_ACCOUNT = "210987654321"
# The fewest calls each operation can need under SPEC.md (space roles in the table, 422 without an
# administrator, the task token kept server-side), and what they are.
FEWEST = {
    "create": (
        2,
        "TransactWriteItems (connection, live lock, token, REQUESTED event, with the member's role "
        "and the registered administrator as ConditionChecks) + StartExecution; for an account whose "
        "policy is not the plain one a second transaction, with the policy the first one's refused check "
        "returned",
    ),
    "decide (POST /verify JSON)": (
        3,
        "GetItem of the token item (it carries the request as shown and the task "
        "token) + TransactWriteItems (token used, status, event) + "
        "SendTaskSuccess",
    ),
    "list a page": (
        2,
        "GetItem of the caller's membership (space roles live in the table) + one Query on GSI1",
    ),
    "audit a page": (1, "one Query on the most selective index (the auditors group comes from the JWT)"),
    "create with Idempotency-Key": (
        3,
        "one conditional PutItem of the idempotency record, in progress + create's 2, its transaction "
        "also completing that record (an Update to COMPLETED with the response, without its connection "
        "token, as powertools' save_success would write it, conditioned on the record still being the "
        "one this request put)",
    ),
    "create, same key replayed": (
        4,
        "a read of the idempotency record (the stored response, kept without its connection token) + "
        "GetItem of the connection (its live connection token and link) + GetItem of that token's item "
        "(the copies the new one carries) + TransactWriteItems (new token, old one REPLACED, event, with "
        "the caller's role as a ConditionCheck)",
    ),
}
# Why a call above the floor is made: facts read from the code (layers/shared/account_connections);
# each row is shown only when its call (last field: operation, call) was observed in this run.
REASONS = [
    (
        "dynamodb.GetItem(CONNECTION) twice",
        "decide",
        "approval._open reads the connection item twice: repo.get_connection_item (internals: task "
        "token, CSRF secret) then repo.get_connection (the model) - the same item; one read would do",
        ("decide (POST /verify JSON)", "dynamodb.GetItem(CONNECTION)"),
    ),
    (
        "dynamodb.GetItem(APPROVER)",
        "decide",
        "approval.decide reads the administrator to record `decidedBy` (the email); create already "
        "read it and could store it on the connection",
        ("decide (POST /verify JSON)", "dynamodb.GetItem(APPROVER)"),
    ),
    (
        "dynamodb.GetItem(CONNECTION)",
        "decide",
        "the token item holds only the connection id, so the connection (status, version, task token) is a "
        "second read",
        ("decide (POST /verify JSON)", "dynamodb.GetItem(CONNECTION)"),
    ),
    (
        "dynamodb.UpdateItem(IDEMPOTENCY)",
        "create with key",
        "powertools' own save_success, made only when the create's transaction did not complete the "
        "record with the response returned (adapters/dynamodb/idempotency.py; it always does, so this "
        "row showing is a regression)",
        ("create with Idempotency-Key", "dynamodb.UpdateItem(IDEMPOTENCY)"),
    ),
]
AUDIT_TARGET = ["dynamodb.Query"]
DECIDE_MAX = 3
# Issue 12: a create is its transaction (the role and the administrator as condition checks) and
# the workflow's start; with an Idempotency-Key, 3 calls; replayed, the fewest above (the issue's
# "1 for a replay" is below them: a replay writes a new connection token that carries the old
# one's copies, so it reads the connection and that token before its write).
CREATE_TARGET = ["dynamodb.TransactWriteItems", "stepfunctions.StartExecution"]
KEYED_MAX = 3
REPLAY_MAX = FEWEST["create, same key replayed"][0]


def _wait(predicate: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError("the workflow did not get there in time")


def measure(stack: Any, log: CallLog) -> dict[str, list[str]]:
    """service.operation calls of each operation, in order (the stack of ``bench.inprocess``)."""
    from account_connections.domain.registry import Approver
    from tests.support import http_event, invoke

    observed: dict[str, list[str]] = {}
    # Warm-up: import the handlers and create their clients (not counted).
    invoke("manage_connections", http_event("http_list_connections"))
    invoke("query_audit", http_event("http_audit_connections", sub=AUDITOR, groups=["auditors"]))

    with log.record() as calls:
        created = invoke(
            "manage_connections", http_event("http_create_connection", headers={"Idempotency-Key": None})
        )
    assert created.status == 201, created.text
    observed["create"] = calls
    connection_id = created.json["connectionId"]

    _wait(lambda: stack.item(connection_id).get("taskToken"))  # the workflow waits for the decision
    token = stack.wait_for_email().token  # the administrator's link (a connection token needs a proof)
    with log.record() as calls:
        decided = stack.decide_json(token, "approve")
    assert decided["statusCode"] == 200, decided
    observed["decide (POST /verify JSON)"] = calls
    _wait(lambda: stack.wait_for_end(connection_id)["status"] != "RUNNING")

    with log.record() as calls:
        listed = invoke("manage_connections", http_event("http_list_connections", query={"limit": "25"}))
    assert listed.status == 200, listed.text
    observed["list a page"] = calls

    audit_event = http_event(
        "http_audit_connections",
        sub=AUDITOR,
        groups=["auditors"],
        query={"status": "VERIFIED", "limit": "25"},
    )
    with log.record() as calls:
        audited = invoke("query_audit", audit_event)
    assert audited.status == 200, audited.text
    observed["audit a page"] = calls

    # With an Idempotency-Key, first and replayed, for another account (the first one is live now).
    stack.registry.put_approver(
        Approver(
            accountId=KEYED_ACCOUNT,
            email="other-admin@example.com",
            updatedAt="2026-11-01T00:00:00.000Z",
            updatedBy=OPERATOR,
        )
    )
    keyed = http_event(
        "http_create_connection",
        body={"accountId": KEYED_ACCOUNT, "displayName": "Keyed"},
        headers={"Idempotency-Key": "bench-key-1"},
    )
    for name in ("create with Idempotency-Key", "create, same key replayed"):
        with log.record() as calls:
            answer = invoke("manage_connections", keyed)
        assert answer.status == 201, answer.text
        observed[name] = calls
        # The replay comes once the workflow's first wait has written its links: one that races
        # that write loses its swap and reads again (three more calls), which is not the common case.
        _wait(lambda connection_id=answer.json["connectionId"]: stack.item(connection_id).get("taskToken"))
    return observed


def run() -> Section:
    with workflow_stack() as (stack, log):
        observed = measure(stack, log)
    section = Section(
        "2. AWS calls per operation",
        "the real handler on a real event from events/, against moto in this process (the workflow "
        "fixture of tests/workflow: real ASL, handlers as Lambda steps, seed); a botocore `before-call` hook "
        "on the default boto3 session counts service.operation made by the handling thread. Handlers were "
        "warmed first, so the counts are per request, not per cold start. One run: the counts are "
        "deterministic.",
    )
    table = Table("Calls per operation", ["operation", "calls", "fewest possible", "extra", "observed calls"])
    for name, calls in observed.items():
        fewest, _why = FEWEST[name]
        counted = Counter(calls)
        table.rows.append(
            [
                name,
                len(calls),
                fewest,
                len(calls) - fewest,
                ", ".join(f"{op} x{n}" if n > 1 else op for op, n in counted.items()),
            ]
        )
    section.tables.append(table)
    section.tables.append(
        Table(
            "The fewest calls, and why",
            ["operation", "fewest", "what they are"],
            [[name, n, why] for name, (n, why) in FEWEST.items() if name in observed],
        )
    )
    section.tables.append(
        Table(
            "Why the extra calls (facts from the code, for the calls observed in this run)",
            ["call", "in", "reason"],
            [list(row[:3]) for row in REASONS if row[3][1] in observed.get(row[3][0], [])],
        )
    )
    audit = observed.get("audit a page", [])
    section.targets.append(
        Target("an audit page is one Query", audit == AUDIT_TARGET, ", ".join(audit) or "none")
    )
    create = observed.get("create", [])
    section.targets.append(
        Target(
            "a create is 2 calls (its transaction, StartExecution)",
            create == CREATE_TARGET,
            f"{len(create)}: " + ", ".join(create),
        )
    )
    for name, what, most in (
        ("create with Idempotency-Key", "a create with an Idempotency-Key", KEYED_MAX),
        ("create, same key replayed", "a replayed create", REPLAY_MAX),
    ):
        seen = observed.get(name, [])
        section.targets.append(
            Target(f"{what} is at most {most} calls", len(seen) <= most, f"{len(seen)}: " + ", ".join(seen))
        )
    decide = observed.get("decide (POST /verify JSON)", [])
    section.targets.append(
        Target(
            f"a decision is at most {DECIDE_MAX} calls",
            len(decide) <= DECIDE_MAX,
            f"{len(decide)}: " + ", ".join(decide),
        )
    )
    return section
