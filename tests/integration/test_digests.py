"""The audit digests against moto (DynamoDB and KMS): the job's handler (functions/make_digest) on
its scheduled event, the digests' store and its head condition, and the auditors' routes
``GET /audit/digests`` and ``GET /audit/public-key`` (functions/query_audit). Every signature is
checked with the public key the route answers, as an auditor would (docs/audit.md)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from account_connections.adapters.dynamodb.digests import DynamoDigests
from account_connections.adapters.dynamodb.table import Table
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.digest import canonical, unsigned
from account_connections.domain.errors import DigestRaced
from tests.integration.conftest import TABLE, dump_table
from tests.support import FakeContext, Reply, http_event, invoke, load_event, load_handler

SCHEDULE = load_event("schedule_make_digest")


@pytest.fixture(autouse=True)
def _no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests' events are written just before the job runs: a period ends at the run.
    monkeypatch.setenv("DIGEST_SETTLE_SECONDS", "0")


def run_job() -> dict[str, Any]:
    result: dict[str, Any] = load_handler("make_digest").handler(SCHEDULE, FakeContext())
    return result


def request_connection() -> str:
    reply = invoke(
        "manage_connections", http_event("http_create_connection", headers={"idempotency-key": None})
    )
    assert reply.status == 201, reply.text
    return str(reply.json["connectionId"])


def cancel(connection_id: str) -> None:
    reply = invoke(
        "manage_connections", http_event("http_cancel_connection", path={"connectionId": connection_id})
    )
    assert reply.status == 200, reply.text


def digests(query: dict[str, str] | None = None) -> list[dict[str, Any]]:
    reply = invoke("query_audit", http_event("http_audit_digests", query=query))
    assert reply.status == 200, reply.text
    items: list[dict[str, Any]] = reply.json["items"]
    return items


def export() -> list[dict[str, Any]]:
    reply = invoke("query_audit", http_event("http_audit_export", query={}))
    assert reply.status == 200, reply.text
    return [json.loads(line) for line in reply.text.splitlines()]


def public_key() -> tuple[rsa.RSAPublicKey, Reply]:
    reply = invoke("query_audit", http_event("http_audit_public_key"))
    assert reply.status == 200, reply.text
    key = serialization.load_pem_public_key(reply.text.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    return key, reply


def check(digest: dict[str, Any], key: rsa.RSAPublicKey) -> None:
    """docs/audit.md, "The digest format", done by hand: the hash, then the signature."""
    assert hashlib.sha256(canonical(digest)).hexdigest() == digest["hash"]
    key.verify(
        base64.b64decode(digest["signature"]), bytes.fromhex(digest["hash"]),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO), hashes.SHA256(),
    )  # fmt: skip


def test_the_job_digests_every_chain_that_moved_signed_by_kms_and_an_empty_period_too(
    seeded: dict[str, Any], ddb_operations: list[str]
) -> None:
    first_id = request_connection()
    cancel(first_id)
    # An operator's change: a registry chain moves too.
    assert invoke("administer_spaces", http_event("http_put_space")).status in (200, 201)
    ddb_operations.clear()
    made = run_job()
    assert made["made"] is True and "Scan" not in ddb_operations
    assert ddb_operations.count("TransactWriteItems") == 1

    (first,) = digests()
    events = export()
    key, reply = public_key()
    assert reply.headers["X-Key-Id"] == seeded["digest_key"] == first["keyId"]
    assert reply.headers["Content-Type"].startswith("application/x-pem-file")
    check(first, key)
    assert first["from"] is None and first["previousHash"] is None and first["version"] == 1
    assert first["signingAlgorithm"] == "RSASSA_PSS_SHA_256"
    assert first["eventCount"] == len(events) == sum(chain["count"] for chain in first["chains"])
    chains = {chain["chain"]: chain for chain in first["chains"]}
    mine = [event for event in events if event["chain"] == f"CONNECTION#{first_id}"]
    last = mine[-1]
    assert chains[f"CONNECTION#{first_id}"] == {
        "chain": f"CONNECTION#{first_id}", "count": len(mine), "seq": last["seq"], "hash": last["hash"],
    }  # fmt: skip
    assert any(name.startswith("REGISTRY#SPACE#") for name in chains)

    # Nothing happened since: the next period still gets a digest, chained to the first.
    assert run_job()["made"] is True
    first_again, second = digests()
    assert first_again == first
    check(second, key)
    assert second["chains"] == [] and second["eventCount"] == 0
    assert second["from"] == first["to"] and second["previousHash"] == first["hash"]

    # A new request moves one chain, in the third period only.
    third_id = request_connection()
    run_job()
    third = digests()[-1]
    check(third, key)
    assert [chain["chain"] for chain in third["chains"]] == [f"CONNECTION#{third_id}"]


def test_a_run_that_lost_to_another_stores_nothing(seeded: dict[str, Any]) -> None:
    store = DynamoDigests(Table(TABLE, seeded["ddb"]))
    now = utcnow()
    signed = {"signature": "c2ln"}

    def digest(previous: Any, seconds: int) -> Any:
        made = unsigned(previous=previous, to=isoformat(now + timedelta(seconds=seconds)), chains=[],
                        made_at=isoformat(now), key_id="k")  # fmt: skip
        return made.model_copy(update=signed)

    first = digest(None, 0)
    store.append(first)
    # Two first digests: the second finds the head made.
    with pytest.raises(DigestRaced):
        store.append(digest(None, 1))
    # Two runs that both read the first: one wins, the other stores nothing.
    store.append(digest(first, 2))
    before = dump_table(seeded["ddb"])
    with pytest.raises(DigestRaced):
        store.append(digest(first, 3))
    assert dump_table(seeded["ddb"]) == before
    latest = store.latest()
    assert latest is not None and latest.to == isoformat(now + timedelta(seconds=2))


def test_the_digests_route_answers_whole_periods_of_the_range_page_by_page(seeded: dict[str, Any]) -> None:
    for _ in range(3):
        assert run_job()["made"] is True
    everything = digests()
    assert len(everything) == 3
    # From the second's start: the first (no from) is left out.
    assert digests({"from": everything[1]["from"]}) == everything[1:]
    assert digests({"to": everything[1]["to"]}) == everything[:2]
    page = invoke("query_audit", http_event("http_audit_digests", query={"limit": "2"}))
    assert len(page.json["items"]) == 2 and page.json["nextToken"]
    query = {"limit": "2", "nextToken": page.json["nextToken"]}
    rest = invoke("query_audit", http_event("http_audit_digests", query=query))
    assert rest.json["items"] == everything[2:] and rest.json.get("nextToken") is None
    refused = invoke(
        "query_audit", http_event("http_audit_digests", query={"from": "2026-12-02", "to": "2026-12-01"})
    )
    assert refused.status == 400


def test_a_run_whose_period_would_end_before_the_last_digest_makes_none(
    seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from account_connections.settings import load_settings

    assert run_job()["made"] is True
    # The settle time made longer (a redeploy): the next period's end is before the last one's.
    monkeypatch.setenv("DIGEST_SETTLE_SECONDS", "3600")
    load_settings.cache_clear()
    assert run_job() == {"made": False, "reason": "too soon"}
    assert len(digests()) == 1
