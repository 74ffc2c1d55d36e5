"""The audit digest job on its schedule in the local stack (the template's EventBridge rule, fired
every LOCAL_DIGEST_INTERVAL_SECONDS, signing with the emulated KMS): digests keep coming, quiet
periods included, each chained to the last and signed by the key of ``GET /audit/public-key``,
and a new request's chain shows up in the first digest whose period holds its events."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import urllib.parse
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from local.process import StackProcess
from local.seed_data import ADMIN_ACCOUNT, AUDITOR, REQUESTER
from tests.e2e.client import StackClient, readme_block, wait_for
from tests.support import ROOT

pytestmark = pytest.mark.e2e

# The e2e stack's schedule and settle time (tests/e2e/conftest.py) are seconds: a digest that
# covers what a test just did comes within this.
DIGEST_WAIT = 60


def digests(client: StackClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        path = "/audit/digests?limit=100" + (f"&nextToken={token}" if token else "")
        reply = client.request("GET", path, user=AUDITOR)
        assert reply.status == 200, reply.text
        found += reply.json()["items"]
        token = reply.json().get("nextToken")
        if not token:
            return found


def public_key(client: StackClient) -> tuple[rsa.RSAPublicKey, str]:
    reply = client.request("GET", "/audit/public-key", user=AUDITOR)
    assert reply.status == 200, reply.text
    key = serialization.load_pem_public_key(reply.body)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072  # RSA_3072, as declared
    return key, str(reply.headers["X-Key-Id"])


def check_signed(digest: dict[str, Any], key: rsa.RSAPublicKey) -> None:
    body = {k: v for k, v in digest.items() if k not in ("hash", "signature") and v is not None}
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(data).hexdigest() == digest["hash"]
    key.verify(
        base64.b64decode(digest["signature"]),
        bytes.fromhex(digest["hash"]),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
        hashes.SHA256(),
    )


def test_digests_come_on_schedule_chained_and_signed_quiet_periods_too(
    stack: StackProcess, client: StackClient
) -> None:
    key, key_id = public_key(client)

    def three() -> list[dict[str, Any]] | None:
        found = digests(client)
        return found if len(found) >= 3 else None

    seen = wait_for(three, DIGEST_WAIT, "three digests from the schedule")
    for previous, digest in zip(seen, seen[1:], strict=False):
        assert digest["previousHash"] == previous["hash"] and digest["from"] == previous["to"]
    for digest in seen:
        check_signed(digest, key)
        assert digest["keyId"] == key_id and digest["signingAlgorithm"] == "RSASSA_PSS_SHA_256"
    assert seen[0]["from"] is None and seen[0]["previousHash"] is None
    # Nothing happens in most periods of an idle stack; each of them still has its digest.
    assert any(digest["eventCount"] == 0 and digest["chains"] == [] for digest in seen)


def test_a_new_request_is_in_the_digest_of_its_period(stack: StackProcess, client: StackClient) -> None:
    space_id = client.new_space({REQUESTER: "SPACE_ADMIN"})
    created = client.create_connection(
        REQUESTER, space_id, ADMIN_ACCOUNT, displayName=f"Digest {uuid.uuid4().hex[:6]}"
    )
    assert created.status == 201, created.text
    chain = f"CONNECTION#{created.json()['connectionId']}"
    client.email_about(created.json()["displayName"])  # its link is out: the request's events so far

    def covering() -> dict[str, Any] | None:
        return next((d for d in digests(client) for c in d["chains"] if c["chain"] == chain), None)

    digest = wait_for(covering, DIGEST_WAIT, f"a digest naming {chain}")
    entry = next(c for c in digest["chains"] if c["chain"] == chain)
    query = urllib.parse.urlencode({"from": digest["from"]} if digest["from"] else {})
    exported = client.request("GET", f"/audit/export?{query}", user=AUDITOR)
    assert exported.status == 200, exported.text
    events = [json.loads(line) for line in exported.text.splitlines()]
    # The period is from < at <= to.
    mine = [
        e for e in events if e.get("chain") == chain and e["at"] != digest["from"] and e["at"] <= digest["to"]
    ]
    assert entry == {"chain": chain, "count": len(mine), "seq": mine[-1]["seq"], "hash": mine[-1]["hash"]}
    check_signed(digest, public_key(client)[0])


def test_the_readme_auditor_walkthrough_runs_as_written(stack: StackProcess, client: StackClient) -> None:
    wait_for(lambda: digests(client) or None, DIGEST_WAIT, "a first digest")
    script = (
        "set -eu\n"
        + readme_block("**1. Get a token.**")
        + "".join(readme_block("**8. An auditor exports", index) for index in (0, 1))
    )
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "API": stack.url}, capture_output=True,
                          text=True, timeout=180, check=False, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = done.stdout.strip().splitlines()
    intact = next(line for line in lines if " chains: " in line)
    assert "intact" in intact and "signed and chained" in intact, done.stdout
    assert any(line.startswith("modified: ") for line in lines), done.stdout
    assert lines[-1].startswith("exit 1") or "exit 1" in lines, done.stdout
