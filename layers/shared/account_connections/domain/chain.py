"""Hash chains of audit events (SPEC.md, "Audit integrity and export").

Every audit event belongs to one chain: its connection's (``CONNECTION#<id>``) or its registry
partition's (``REGISTRY#SPACE#<id>``, ``REGISTRY#ACCOUNT#<id>``). In its chain it has a place
(``seq``, from 1), the ``hash`` of the event before it (``prevHash``, null for the first) and
its own ``hash``: SHA-256, in lowercase hex, of its *canonical form*:

    the event as a JSON object without its ``hash`` and without any field whose value is null,
    keys sorted by code point, no whitespace (separators ``,`` and ``:``), strings as UTF-8 with
    no escaping beyond what JSON requires (``ensure_ascii=False``), integers as integers.

In Python: ``hashlib.sha256(json.dumps({k: v for k, v in event.items() if k != "hash" and v is
not None}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()``.
docs/audit.md has the same, with an example to check an implementation against.

The head of a chain (its last ``seq``, ``hash`` and ``at``) lives on the item that every write
of the chain already conditions on: the connection item for a connection's chain, a ``CHAIN``
item in the registry partition for the registry's. A write links its events from the head as
read and requires the head unchanged, so two writers cannot fork a chain: one wins, the other
reads again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from account_connections.domain.audit import AuditEvent
from account_connections.domain.clock import isoformat


class ChainHead(NamedTuple):
    """A chain's last event: its place, hash and time (``seq`` 0: the chain is empty)."""

    seq: int = 0
    hash: str | None = None
    at: str | None = None


def canonical(event: Mapping[str, Any], unhashed: tuple[str, ...] = ("hash",)) -> bytes:
    """The bytes an event's ``hash`` is the SHA-256 of (see the module's docstring): without the
    ``unhashed`` fields (a digest's form leaves out its ``signature`` too) and null fields."""
    kept = {key: value for key, value in event.items() if key not in unhashed and value is not None}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def link(events: list[AuditEvent], head: ChainHead, chain: str) -> tuple[list[AuditEvent], ChainHead]:
    """``events``, in their order, placed in ``chain`` after ``head``: each with its ``chain``,
    ``seq``, ``prevHash`` and ``hash``; and the chain's new head. Along a chain ``at`` only grows:
    an event that would not be later than the one before it (the events of one write, or a writer
    whose clock is behind) is recorded a millisecond after it, so that time order is chain order."""
    linked: list[AuditEvent] = []
    previous, seq, last_at = head.hash, head.seq, head.at
    for event in events:
        seq += 1
        at = event.at
        if last_at is not None and at <= last_at:
            at = isoformat(datetime.fromisoformat(last_at) + timedelta(milliseconds=1))
        last_at = at
        placed = event.model_copy(
            update={"chain": chain, "seq": seq, "prevHash": previous, "hash": None, "at": at}
        )
        digest = event_hash(placed.model_dump(mode="json"))
        placed = placed.model_copy(update={"hash": digest})
        linked.append(placed)
        previous = digest
    last = linked[-1] if linked else None
    return linked, ChainHead(seq, previous, last.at if last else head.at)
