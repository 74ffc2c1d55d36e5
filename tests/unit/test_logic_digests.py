"""The audit digests over the fakes (logic/digests.py, docs/audit.md "Digests"): each period's
chains, counts and heads, the digests' own chain, the signature, empty periods, the settle time,
and runs that must store nothing (too soon, raced, KMS down)."""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.clock import isoformat, utcnow
from account_connections.domain.digest import ChainDigest, Digest, digest_hash, summarize
from account_connections.domain.errors import DependencyUnavailable, DigestRaced, InvalidRequest
from account_connections.domain.registry import Approver
from account_connections.logic.digests import list_digests, make_digest
from tests.fakes import FakeSigner, InMemoryDigests
from tests.unit.world import STAMP, World

OTHER_ACCOUNT = "444455556666"

SETTLE = 60


def all_events(world: World) -> list[AuditEvent]:
    return world.audit.export_events(None, None, 10_000, None).items


def expected_chains(events: list[AuditEvent]) -> list[ChainDigest]:
    by_chain: dict[str, list[AuditEvent]] = {}
    for event in events:
        assert event.chain is not None
        by_chain.setdefault(event.chain, []).append(event)
    heads = []
    for chain in sorted(by_chain):
        last = max(by_chain[chain], key=lambda event: event.seq or 0)
        assert last.seq is not None and last.hash is not None
        heads.append(ChainDigest(chain=chain, count=len(by_chain[chain]), seq=last.seq, hash=last.hash))
    return heads


def verify_signature(signer: FakeSigner, digest: Digest) -> None:
    """As an auditor checks it (docs/audit.md): the PSS signature of the hash's 32 bytes."""
    assert digest.hash is not None and digest.signature is not None
    public = serialization.load_pem_public_key(signer.public_key_pem().encode())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    public.verify(base64.b64decode(digest.signature), bytes.fromhex(digest.hash), pss, hashes.SHA256())  # type: ignore[union-attr,call-arg,arg-type]


@pytest.fixture
def parts() -> tuple[InMemoryDigests, FakeSigner]:
    return InMemoryDigests(), FakeSigner()


def run(world: World, store: InMemoryDigests, signer: FakeSigner, now: datetime) -> Digest | None:
    return make_digest(world.audit, store, signer, now=now, settle_seconds=SETTLE)


def test_the_first_digest_names_every_chain_that_moved_with_its_count_and_head(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    first, _ = world.waiting()
    world.registry.put_approver(Approver(accountId=OTHER_ACCOUNT, email="other@example.com", **STAMP))
    world.request(account_id=OTHER_ACCOUNT)
    events = all_events(world)
    assert len({event.chain for event in events}) == 2

    digest = run(world, store, signer, utcnow() + timedelta(hours=1))

    assert digest is not None and store.stored == [digest]
    assert digest.from_ is None and digest.previousHash is None
    assert digest.chains == expected_chains(events)
    assert digest.eventCount == len(events)
    assert digest.hash == digest_hash(digest.model_copy(update={"hash": None, "signature": None}))
    assert digest.keyId == signer.key_id and digest.signingAlgorithm == "RSASSA_PSS_SHA_256"
    verify_signature(signer, digest)
    assert f"CONNECTION#{first.connectionId}" in {chain.chain for chain in digest.chains}


def test_an_empty_period_still_gets_a_digest_chained_to_the_last(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    world.waiting()
    now = utcnow() + timedelta(hours=1)
    first = run(world, store, signer, now)
    second = run(world, store, signer, now + timedelta(hours=1))
    assert first is not None and second is not None
    assert second.chains == [] and second.eventCount == 0
    assert second.from_ == first.to and second.previousHash == first.hash
    assert second.to == isoformat(now + timedelta(hours=1) - timedelta(seconds=SETTLE))
    verify_signature(signer, second)
    assert [digest.to for digest in store.stored] == [first.to, second.to]


def test_each_event_is_in_exactly_one_period(world: World, parts: tuple[InMemoryDigests, FakeSigner]) -> None:
    store, signer = parts
    created, _ = world.waiting()
    newest = max(event.at for event in all_events(world))
    first = run(world, store, signer, datetime.fromisoformat(newest) + timedelta(seconds=SETTLE))
    assert first is not None and first.to == newest
    before = {event.eventId for event in all_events(world)}
    time.sleep(0.005)  # the period's end is a millisecond: what follows is after it
    world.clock.advance(timedelta(minutes=5))
    # A later change of the same connection: its chain moves again, in the next period only.
    world.notify(created.connectionId, task_token="task-2")
    later = [event for event in all_events(world) if event.eventId not in before]
    assert later, "the second notify recorded no event"
    second = run(world, store, signer, utcnow() + timedelta(hours=2))

    assert first is not None and second is not None
    assert first.eventCount + second.eventCount == len(all_events(world))
    moved = [chain for chain in second.chains if chain.chain == f"CONNECTION#{created.connectionId}"]
    assert moved and moved[0].count == len(later)
    assert moved[0].seq == max(event.seq or 0 for event in later)


def test_a_period_ends_settle_seconds_before_the_run(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    world.waiting()
    newest = max(event.at for event in all_events(world))
    # A run within the settle time of the newest event leaves it for the next period.
    now = datetime.fromisoformat(newest) + timedelta(seconds=SETTLE - 1)
    digest = run(world, store, signer, now)
    assert digest is not None and digest.to < newest
    assert all(chain.count for chain in digest.chains)
    assert digest.eventCount == len([event for event in all_events(world) if event.at <= digest.to])
    later = run(world, store, signer, now + timedelta(seconds=2))
    assert later is not None and later.eventCount == len(all_events(world)) - digest.eventCount


def test_a_run_within_the_settle_time_of_the_last_digest_makes_none(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    now = utcnow()
    assert run(world, store, signer, now) is not None
    signed = len(signer.signed)
    assert run(world, store, signer, now) is None
    assert len(store.stored) == 1 and len(signer.signed) == signed


def test_a_run_that_read_a_digest_that_is_no_longer_the_newest_stores_nothing(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    now = utcnow()
    run(world, store, signer, now)

    class Stale(InMemoryDigests):
        """Another run's view: it read before the first digest was stored."""

        def latest(self) -> Digest | None:
            return None

    stale = Stale()
    stale.stored = store.stored
    with pytest.raises(DigestRaced):
        make_digest(world.audit, stale, signer, now=now + timedelta(minutes=5), settle_seconds=SETTLE)
    assert len(store.stored) == 1


def test_kms_unavailable_stores_nothing(world: World, parts: tuple[InMemoryDigests, FakeSigner]) -> None:
    store, signer = parts
    signer.unavailable = True
    with pytest.raises(DependencyUnavailable):
        run(world, store, signer, utcnow())
    assert store.stored == []


def test_auditors_get_the_digests_whose_whole_period_is_in_the_range(
    world: World, parts: tuple[InMemoryDigests, FakeSigner]
) -> None:
    store, signer = parts
    start = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    made = [run(world, store, signer, start + timedelta(hours=hour)) for hour in range(4)]
    assert all(made)
    everything = list_digests(store, at_from=None, at_to=None, limit=10, next_token=None)
    assert [digest.to for digest in everything.items] == [digest.to for digest in made if digest]
    # From the second digest's start on: the first (no from) is left out, the rest are in.
    second = made[1]
    assert second is not None and second.from_ is not None
    ranged = list_digests(store, at_from=second.from_, at_to=None, limit=10, next_token=None)
    assert [digest.to for digest in ranged.items] == [digest.to for digest in made[1:] if digest]
    paged = list_digests(store, at_from=None, at_to=None, limit=3, next_token=None)
    assert len(paged.items) == 3 and paged.next_token
    rest = list_digests(store, at_from=None, at_to=None, limit=3, next_token=paged.next_token)
    assert len(rest.items) == 1 and rest.next_token is None
    with pytest.raises(InvalidRequest):
        list_digests(store, at_from="2026-12-02", at_to="2026-12-01", limit=10, next_token=None)


def test_events_without_a_chain_are_not_digested() -> None:
    fields: dict[str, Any] = {"connectionId": "c", "type": EventType.REQUESTED, "actor": "a"}
    chained = AuditEvent(eventId="e1", at="2026-12-01T00:00:00.000Z", chain="CONNECTION#c", seq=1,
                         hash="a" * 64, **fields)  # fmt: skip
    old = AuditEvent(eventId="e0", at="2026-11-01T00:00:00.000Z", **fields)
    assert summarize([old, chained]) == [ChainDigest(chain="CONNECTION#c", count=1, seq=1, hash="a" * 64)]
