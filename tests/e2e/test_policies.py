"""Approval policies end to end on the local stack, over HTTP only: the README's quorum walkthrough
run as written, concurrent approvals reaching APPROVED once, and a policy's reminder and
escalation arriving on the real clock, each approver's email reaching that approver only."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from typing import Any

from local.process import StackProcess
from local.seed_data import POLICY_ACCOUNT, POLICY_APPROVERS, REQUESTER
from tests.e2e.client import StackClient, readme_block, wait_for

OPERATOR = "oscar"
BACKUP = "backup@example.com"


def _links_to(client: StackClient, address: str, connection_id: str) -> list[str]:
    """The links of the emails ``address`` received about ``connection_id``, oldest first."""
    return [
        email["links"][0] for email in client.outbox()
        if email["to"] == address and email["links"] and f"Connection:    {connection_id}" in email["body"]
    ]  # fmt: skip


def _first_link(
    client: StackClient, address: str, connection_id: str, *, after: int = 0, timeout: float = 30
) -> str:
    """The link ``address`` received about ``connection_id`` after its first ``after`` (waiting)."""

    def found() -> str | None:
        links = _links_to(client, address, connection_id)[after:]
        return links[0] if links else None

    return wait_for(found, timeout, f"no link {after + 1} to {address} about {connection_id}")


def _approve(client: StackClient, link: str) -> Any:
    token = link.split("token=", 1)[1]
    return client.request("POST", "/verify", json_body={"token": token, "decision": "approve"})


def test_the_readme_quorum_walkthrough_runs_as_written(stack: StackProcess, client: StackClient) -> None:
    script = "set -eu\n" + readme_block("**1. Get a token.**") + readme_block("**7. A request that needs")
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "API": stack.url}, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert '"status": "PENDING_APPROVAL"' in lines[0].replace('":"', '": "')
    assert lines[1] == "Approvals: 1 of 2 needed"
    assert '"APPROVED"' in lines[2]
    status, rest = lines[3].split(" ", 1)
    assert status == "VERIFIED", lines[3]
    assert str(list(POLICY_APPROVERS)) in rest and rest.count("APPROVAL_RECORDED") == 2
    # Both approvers were told how it ended
    told = [e for e in client.outbox() if "verified" in e["subject"] and e["to"] in POLICY_APPROVERS]
    assert sorted(e["to"] for e in told)[-2:] == sorted(POLICY_APPROVERS)
    # The README's policy PUT, run as written, answers the policy; the seeded one is then put back
    policy = "set -eu\n" + readme_block("**1. Get a token.**") + readme_block("**7. A request that needs", 1)
    put = subprocess.run(["bash", "-c", policy], env={**os.environ, "API": stack.url}, capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert put.returncode == 0 and '"escalateTo":["security@example.com"]' in put.stdout.replace(" ", ""), put
    restored = client.request("PUT", f"/approvers/{POLICY_ACCOUNT}", user=OPERATOR,
                              json_body={"approvers": list(POLICY_APPROVERS), "quorum": 2})  # fmt: skip
    assert restored.status == 200, restored.text


def test_concurrent_approvals_reach_approved_exactly_once(client: StackClient) -> None:
    space = client.new_space({REQUESTER: "SPACE_ADMIN"})
    created = client.create_connection(REQUESTER, space, POLICY_ACCOUNT, displayName="Race")
    assert created.status == 201, created.text
    connection_id = created.json()["connectionId"]
    links = [_first_link(client, address, connection_id) for address in POLICY_APPROVERS]
    answers: list[int] = []
    barrier = threading.Barrier(len(links))

    def approve(link: str) -> None:
        barrier.wait()
        answers.append(_approve(client, link).status)

    threads = [threading.Thread(target=approve, args=(link,)) for link in links]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200, 200], answers
    verified = client.wait_for_status(space, connection_id, "VERIFIED", timeout=60)
    assert sorted(a["approver"] for a in verified["approvals"]) == sorted(POLICY_APPROVERS)
    approved = [e for e in verified["history"] if e.get("toStatus") == "APPROVED"]
    assert len(approved) == 1


def test_a_reminder_and_an_escalation_arrive_on_the_clock(client: StackClient) -> None:
    # Given two accounts: one reminding after a minute, one escalating after a minute
    reminding, escalating = f"7777{uuid.uuid4().int % 10**8:08d}", f"8888{uuid.uuid4().int % 10**8:08d}"
    ops1, ops2 = POLICY_APPROVERS
    for account, policy in (
        (reminding, {"approvers": [ops1, ops2], "quorum": 2, "remindAfterSeconds": [60]}),
        (escalating, {"approvers": [ops1], "escalateAfterSeconds": 60, "escalateTo": [BACKUP]}),
    ):
        reply = client.request("PUT", f"/approvers/{account}", user=OPERATOR, json_body=policy)
        assert reply.status == 200, reply.text
    space = client.new_space({REQUESTER: "SPACE_ADMIN"})
    ids = {}
    for account in (reminding, escalating):
        created = client.create_connection(REQUESTER, space, account, displayName=f"Timers {account}")
        assert created.status == 201, created.text
        ids[account] = created.json()["connectionId"]
    started = time.monotonic()
    first_ops1, first_ops2 = (_first_link(client, address, ids[reminding]) for address in (ops1, ops2))
    assert _approve(client, first_ops1).status == 200
    # Then after its minute ops2 (who has not decided) gets a reminder, and its first link dies
    reminder = _first_link(client, ops2, ids[reminding], after=1, timeout=100)
    assert time.monotonic() - started >= 55
    assert client.request("GET", first_ops2).status == 410
    assert len(_links_to(client, ops1, ids[reminding])) == 1
    # And the backup gets a link once the other request escalated, and decides it
    backup = _first_link(client, BACKUP, ids[escalating], timeout=100)
    assert _approve(client, reminder).status == 200
    assert _approve(client, backup).status == 200
    for account in (reminding, escalating):
        verified = client.wait_for_status(space, ids[account], "VERIFIED", timeout=60)
        types = [e["type"] for e in verified["history"]]
        assert ("REMINDED" if account == reminding else "ESCALATED") in types
    assert client.connection(space, ids[escalating])["decidedBy"] == BACKUP
