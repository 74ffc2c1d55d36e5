"""The audit events' hash chains (domain.chain): the canonical form, exactly as docs/audit.md gives
it, and the linking that every store applies."""

from __future__ import annotations

import hashlib
import json

from account_connections.domain.audit import AuditEvent, EventType
from account_connections.domain.chain import ChainHead, canonical, event_hash, link

# docs/audit.md's example: an outsider's implementation must give this hash for this event.
EXAMPLE = {
    "eventId": "000001",
    "connectionId": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "spaceId": "demo",
    "accountId": "111122223333",
    "type": "REQUESTED",
    "actor": "alice",
    "at": "2026-12-02T10:00:00.000Z",
    "toStatus": "PENDING_APPROVAL",
    "detail": "requested by alice — «Production»",
    "chain": "CONNECTION#0f8fad5b-d9cb-469f-a165-70867728950e",
    "seq": 1,
    "prevHash": None,
}
EXAMPLE_CANONICAL = (
    '{"accountId":"111122223333","actor":"alice","at":"2026-12-02T10:00:00.000Z",'
    '"chain":"CONNECTION#0f8fad5b-d9cb-469f-a165-70867728950e",'
    '"connectionId":"0f8fad5b-d9cb-469f-a165-70867728950e","detail":"requested by alice — «Production»",'
    '"eventId":"000001","seq":1,"spaceId":"demo","toStatus":"PENDING_APPROVAL","type":"REQUESTED"}'
)


def test_the_canonical_form_is_sorted_compact_utf8_without_hash_and_nulls() -> None:
    with_hash = {**EXAMPLE, "hash": "ignored", "fromStatus": None}
    assert canonical(with_hash).decode("utf-8") == EXAMPLE_CANONICAL
    assert event_hash(with_hash) == hashlib.sha256(EXAMPLE_CANONICAL.encode("utf-8")).hexdigest()


def test_the_documented_example_hash_is_the_one_computed() -> None:
    documented = (__import__("pathlib").Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    assert event_hash(EXAMPLE) in documented
    assert EXAMPLE_CANONICAL in documented


def _event(i: int) -> AuditEvent:
    return AuditEvent(eventId=f"{i:06d}", connectionId="c", type=EventType.LINK_SENT, actor="system",
                      at=f"2026-12-02T10:00:0{i}.000Z", detail=f"link {i}")  # fmt: skip


def test_linking_places_each_event_after_the_head_and_moves_it() -> None:
    first, head = link([_event(1)], ChainHead(), "CONNECTION#c")
    more, after = link([_event(2), _event(3)], head, "CONNECTION#c")
    chain = [*first, *more]
    assert [e.seq for e in chain] == [1, 2, 3]
    assert [e.prevHash for e in chain] == [None, chain[0].hash, chain[1].hash]
    for event in chain:
        assert event.hash == event_hash(event.model_dump(mode="json"))
    assert after == ChainHead(3, chain[2].hash, chain[2].at)


def test_a_changed_field_changes_the_hash() -> None:
    [event], _ = link([_event(1)], ChainHead(), "CONNECTION#c")
    exported = json.loads(event.model_dump_json())
    assert event_hash(exported) == event.hash
    exported["detail"] = "link 9"
    assert event_hash(exported) != event.hash


def test_time_only_grows_along_a_chain() -> None:
    # Given a head at 10:00:05 and events stamped at the same moment and a moment before
    head = ChainHead(4, "h", "2026-12-02T10:00:05.000Z")
    same, earlier = _event(5), _event(1)
    linked, after = link([same, earlier], head, "CONNECTION#c")
    # Then each is recorded a millisecond after the one before it: time order is chain order
    assert [e.at for e in linked] == ["2026-12-02T10:00:05.001Z", "2026-12-02T10:00:05.002Z"]
    assert after.at == "2026-12-02T10:00:05.002Z"
    later, _ = link([_event(9)], after, "CONNECTION#c")
    assert later[0].at == "2026-12-02T10:00:09.000Z"
