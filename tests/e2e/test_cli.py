"""The acctconn console script against the running local stack, as a user runs it: a process
per command, its exit code, its stdout and its one line of stderr.

It runs ``python -m acctconn`` (the console script's own ``main``) with this checkout's ``cli/``
first on PYTHONPATH, so the code under test is this tree's even where the virtualenv's editable
install points at another checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from local.process import StackProcess
from local.seed_data import (
    ADMIN_ACCOUNT,
    AUDITOR,
    LIMITED_USER,
    OPERATOR,
    REQUESTER,
    TRUSTED_ROLE,
    UNREGISTERED_ACCOUNT,
)
from tests.e2e.client import StackClient
from tests.support import ROOT

pytestmark = pytest.mark.e2e

FORBIDDEN, NOT_FOUND, CONFLICT, UNPROCESSABLE = "(403)", "(404)", "(409)", "(422)"
REFUSED, USAGE, API, AUTH = 1, 2, 3, 4  # acctconn's exit codes (cli/acctconn/errors.py)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def acctconn(api: str, token: str | None, *args: str) -> Run:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ACCTCONN_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "250"  # one line per row, whatever the terminal running the tests
    command = [sys.executable, "-m", "acctconn", "--api", api]
    if token is not None:
        command += ["--token", token]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def as_user(stack: StackProcess, client: StackClient) -> Any:
    tokens: dict[str, str] = {}

    def run(user: str, *args: str) -> Run:
        if user not in tokens:
            tokens[user] = client.token(user)
        return acctconn(stack.url, tokens[user], *args)

    return run


@pytest.fixture(scope="module")
def space(client: StackClient) -> str:
    return client.new_space({REQUESTER: "SPACE_ADMIN", LIMITED_USER: "LIMITED_ACCESS"})


def assert_refused(run: Run, code: int, status: str) -> None:
    assert run.code == code, (run.stdout, run.stderr)
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and status in lines[0], run.stderr


def test_a_requester_requests_lists_reads_and_cancels(as_user: Any, space: str) -> None:
    role = f"arn:aws:iam::{ADMIN_ACCOUNT}:role/{TRUSTED_ROLE}"
    marker = f"CLI {uuid.uuid4().hex[:8]}"
    created = as_user(
        REQUESTER, "--json", "connections", "request", space,
        "--account", ADMIN_ACCOUNT, "--name", marker, "--description", "made by the CLI", "--role", role,
        "--idempotency-key", uuid.uuid4().hex,
    )  # fmt: skip
    assert created.code == 0, created.stderr
    connection = created.json()
    connection_id = connection["connectionId"]
    assert connection["status"] == "PENDING_APPROVAL" and connection["displayName"] == marker
    assert connection["roleArns"] == [role] and connection["connectionToken"]
    assert "shown only this once" in created.stderr

    listed = as_user(REQUESTER, "connections", "list", space)
    assert listed.code == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if connection_id in line)
    assert marker in row and "PENDING_APPROVAL" in row and ADMIN_ACCOUNT in row
    every = as_user(
        REQUESTER, "--json", "connections", "list", space, "--all", "--status", "PENDING_APPROVAL"
    )
    assert every.code == 0 and [item["connectionId"] for item in every.json()] == [connection_id]
    page = as_user(REQUESTER, "--json", "connections", "list", space, "--limit", "1")
    assert page.code == 0 and [item["connectionId"] for item in page.json()["items"]] == [connection_id]

    shown = as_user(REQUESTER, "connections", "get", space, connection_id)
    assert shown.code == 0, shown.stderr
    for text in (
        connection_id,
        marker,
        "made by the CLI",
        role,
        "History",
        "REQUESTED",
        "requested by alice",
    ):
        assert text in shown.stdout, text
    read = as_user(LIMITED_USER, "--json", "connections", "get", space, connection_id)
    assert read.code == 0 and read.json()["history"][0]["type"] == "REQUESTED"

    cancelled = as_user(REQUESTER, "connections", "cancel", space, connection_id)
    assert cancelled.code == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert_refused(as_user(REQUESTER, "connections", "cancel", space, connection_id), REFUSED, CONFLICT)


def test_the_service_s_refusals_exit_with_their_code_and_name_the_problem(as_user: Any, space: str) -> None:
    carol = as_user(LIMITED_USER, "connections", "request", space, "--account", ADMIN_ACCOUNT, "--name", "No")
    assert_refused(carol, REFUSED, FORBIDDEN)
    unknown = as_user(REQUESTER, "connections", "get", space, str(uuid.uuid4()))
    assert_refused(unknown, REFUSED, NOT_FOUND)
    nobody = as_user(
        REQUESTER, "connections", "request", space, "--account", UNREGISTERED_ACCOUNT, "--name", "N"
    )
    assert_refused(nobody, REFUSED, UNPROCESSABLE)
    invalid = as_user(
        REQUESTER, "connections", "request", space, "--account", ADMIN_ACCOUNT, "--name", "a\u200bb"
    )
    assert_refused(invalid, REFUSED, "(400)")
    assert "displayName: " in invalid.stderr
    assert_refused(as_user(REQUESTER, "audit", "events"), REFUSED, FORBIDDEN)
    assert_refused(as_user(REQUESTER, "approvers", "list"), REFUSED, FORBIDDEN)


def test_authentication_usage_and_network_failures_have_their_own_codes(stack: StackProcess) -> None:
    assert_refused(acctconn(stack.url, None, "connections", "list", "demo"), AUTH, "ACCTCONN_TOKEN")
    assert_refused(acctconn(stack.url, "not-a-jwt", "connections", "list", "demo"), AUTH, "401")
    usage = acctconn(stack.url, "t", "connections", "get", "demo", "not-a-uuid")
    assert usage.code == USAGE and "is not a connection id" in usage.stderr
    unreachable = acctconn("http://127.0.0.1:9", "t", "connections", "list", "demo")
    assert_refused(unreachable, API, "cannot reach the API")


def test_an_operator_registers_and_lists_approvers(as_user: Any) -> None:
    account = f"9999{uuid.uuid4().int % 10**8:08d}"
    plain = as_user(OPERATOR, "approvers", "put", account, "--email", "cli-admin@example.com")
    assert plain.code == 0, plain.stderr
    assert account in plain.stdout and "cli-admin@example.com" in plain.stdout
    policy = as_user(
        OPERATOR, "--json", "approvers", "put", account,
        "--approver", "cli-ops1@example.com", "--approver", "cli-ops2@example.com", "--quorum", "2",
        "--remind-after", "3600", "--escalate-after", "7200", "--escalate-to", "cli-sec@example.com",
    )  # fmt: skip
    assert policy.code == 0, policy.stderr
    registered = policy.json()
    assert registered["accountId"] == account
    assert (registered["approvers"], registered["quorum"]) == (
        ["cli-ops1@example.com", "cli-ops2@example.com"],
        2,
    )
    assert (registered["remindAfterSeconds"], registered["escalateAfterSeconds"]) == ([3600], 7200)
    assert registered["escalateTo"] == ["cli-sec@example.com"]

    listed = as_user(OPERATOR, "--json", "approvers", "list", "--all")
    assert listed.code == 0, listed.stderr
    mine = [item for item in listed.json() if item["accountId"] == account]
    assert [item["quorum"] for item in mine] == [2]
    table = as_user(OPERATOR, "approvers", "list", "--all", "--limit", "2")
    assert table.code == 0 and account in table.stdout and ADMIN_ACCOUNT in table.stdout

    too_many = as_user(
        OPERATOR, "approvers", "put", account, "--approver", "cli-ops1@example.com", "--quorum", "2"
    )
    assert_refused(too_many, REFUSED, "(400)")
    assert "quorum: " in too_many.stderr
    usage = as_user(OPERATOR, "approvers", "put", account, "--email", "a@example.com", "--quorum", "2")
    assert usage.code == USAGE


def test_an_auditor_queries_connections_and_events_as_tables_json_and_csv(
    as_user: Any, client: StackClient
) -> None:
    space = client.new_space({REQUESTER: "SPACE_ADMIN"})
    created = as_user(
        REQUESTER, "--json", "connections", "request", space, "--account", ADMIN_ACCOUNT, "--name", "Audited"
    )
    assert created.code == 0, created.stderr
    connection_id = created.json()["connectionId"]

    table = as_user(AUDITOR, "audit", "connections", "--space", space, "--account", ADMIN_ACCOUNT)
    assert table.code == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if connection_id in line)
    assert space in row and "Audited" in row
    found = as_user(
        AUDITOR, "--json", "audit", "connections", "--space", space, "--all", "--from", "2000-01-01"
    )
    assert found.code == 0 and [item["connectionId"] for item in found.json()] == [connection_id]

    as_csv = as_user(AUDITOR, "audit", "connections", "--space", space, "--csv")
    assert as_csv.code == 0, as_csv.stderr
    lines = as_csv.stdout.splitlines()
    assert lines[0].split(",")[0] == "connectionId" and len(lines) == 2 and lines[1].startswith(connection_id)

    events = as_user(AUDITOR, "audit", "events", "--connection", connection_id)
    assert events.code == 0 and "REQUESTED" in events.stdout
    every = as_user(AUDITOR, "--json", "audit", "events", "--connection", connection_id, "--all")
    assert "REQUESTED" in [item["type"] for item in every.json()]
    # A page of one at a time: --all follows X-Next-Token and writes the header once.
    csv_all = as_user(
        AUDITOR, "audit", "events", "--connection", connection_id, "--csv", "--all", "--limit", "1"
    )
    assert csv_all.code == 0, csv_all.stderr
    rows = csv_all.stdout.splitlines()
    assert rows[0].startswith("eventId,") and sum(row.startswith("eventId,") for row in rows) == 1
    assert len(rows) - 1 == len(every.json()) and any(",REQUESTED," in row for row in rows[1:])

    bad = as_user(AUDITOR, "audit", "events", "--from", "yesterday")
    assert_refused(bad, REFUSED, "(400)")
    assert "from: " in bad.stderr


def test_an_auditor_exports_the_trail_and_verifies_it_offline(
    as_user: Any, space: str, tmp_path: Any
) -> None:
    # Given a request made and cancelled now (its chain: REQUESTED, then the status change)
    created = as_user(REQUESTER, "--json", "connections", "request", space, "--account", ADMIN_ACCOUNT,
                      "--name", f"Export {uuid.uuid4().hex[:6]}").json()  # fmt: skip
    assert as_user(REQUESTER, "connections", "cancel", space, created["connectionId"]).code == 0
    # When an auditor exports everything and verifies the file
    exported = tmp_path / "events.jsonl"
    run = as_user(AUDITOR, "audit", "export", "-o", str(exported))
    assert run.code == 0, run.stderr
    lines = exported.read_text().splitlines()
    mine = [json.loads(line) for line in lines if created["connectionId"] in line]
    assert [e["seq"] for e in mine][:2] == [1, 2] and mine[0]["type"] == "REQUESTED"
    intact = as_user(AUDITOR, "audit", "verify", str(exported))
    assert intact.code == 0 and "intact" in intact.stdout, (intact.stdout, intact.stderr)
    # Then a changed event is named
    tampered = tmp_path / "tampered.jsonl"
    changed = [line.replace('"actor":"alice"', '"actor":"mallory"', 1) if created["connectionId"] in line
               and '"REQUESTED"' in line else line for line in lines]  # fmt: skip
    tampered.write_text("\n".join(changed) + "\n")
    caught = as_user(AUDITOR, "audit", "verify", str(tampered))
    assert caught.code == 1 and "modified" in caught.stdout and created["connectionId"] in caught.stdout


def test_an_auditor_verifies_the_export_against_the_signed_digests(
    as_user: Any, space: str, tmp_path: Any
) -> None:
    # Given a request, and the digest job (every few seconds here) having covered it
    created = as_user(REQUESTER, "--json", "connections", "request", space, "--account", ADMIN_ACCOUNT,
                      "--name", f"Digest {uuid.uuid4().hex[:6]}").json()  # fmt: skip
    chain = f"CONNECTION#{created['connectionId']}"

    def digested() -> bool:
        fetched = as_user(AUDITOR, "audit", "digests", "-o", str(tmp_path / "digests.json"))
        assert fetched.code == 0, fetched.stderr
        return any(
            c["chain"] == chain
            for d in json.loads((tmp_path / "digests.json").read_text())
            for c in d["chains"]
        )

    deadline = time.monotonic() + 60
    while not digested():
        assert time.monotonic() < deadline, f"no digest names {chain}"
        time.sleep(1)
    # When the auditor exports everything, and takes the key
    assert as_user(AUDITOR, "audit", "export", "-o", str(tmp_path / "events.jsonl")).code == 0
    key = as_user(AUDITOR, "audit", "public-key", "-o", str(tmp_path / "key.pem"))
    assert key.code == 0 and "arn:aws:kms:" in key.stderr, key.stderr
    files = ["--digests", str(tmp_path / "digests.json"), "--public-key", str(tmp_path / "key.pem")]
    # Then it all verifies
    intact = as_user(AUDITOR, "audit", "verify", str(tmp_path / "events.jsonl"), *files)
    assert intact.code == 0, (intact.stdout, intact.stderr)
    assert "signed and chained" in intact.stdout
    # And the request's last events cut from the export are caught by the digest that covers them
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    mine = [json.loads(line) for line in lines if json.loads(line).get("chain") == chain]
    last = mine[-1]["eventId"]
    (tmp_path / "cut.jsonl").write_text("\n".join(line for line in lines if last not in line) + "\n")
    cut = as_user(AUDITOR, "audit", "verify", str(tmp_path / "cut.jsonl"), *files)
    assert cut.code == 1 and "digest-mismatch" in cut.stdout and chain in cut.stdout, cut.stdout
