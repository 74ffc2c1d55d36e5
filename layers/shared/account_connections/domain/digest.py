"""Signed digests of the audit trail (SPEC.md, "Audit integrity and export"; docs/audit.md,
"Digests").

A digest covers a period (``from < at <= to``, ``from`` null for the first): for every chain with
an event in it, how many and the ``seq`` and ``hash`` of the last; the previous digest's ``hash``;
its own ``hash`` (SHA-256 of its canonical form: the digest without ``hash`` and ``signature``,
null fields left out, keys sorted, no whitespace, UTF-8, as for events); and a signature of the 32
bytes that ``hash`` spells, RSASSA-PSS with SHA-256, made by KMS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from account_connections.domain.audit import AuditEvent

VERSION = 1
SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"
# Fields that are not part of what the hash is over.
_UNHASHED = ("hash", "signature")


class ChainDigest(BaseModel):
    """One chain's events in a period: how many, and the last one's place and hash."""

    chain: str
    count: int
    seq: int
    hash: str


class Digest(BaseModel):
    """A period's digest (docs/audit.md, "The digest format")."""

    model_config = ConfigDict(populate_by_name=True)

    version: int = VERSION
    # The end of the previous digest's period; None for the first digest, which starts at the beginning.
    from_: str | None = Field(default=None, alias="from")
    to: str
    chains: list[ChainDigest]
    eventCount: int
    previousHash: str | None = None
    madeAt: str
    keyId: str
    signingAlgorithm: str = SIGNING_ALGORITHM
    hash: str | None = None
    signature: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The digest as auditors get it (``from``, not ``from_``)."""
        return self.model_dump(mode="json", by_alias=True)


def canonical(digest: Mapping[str, Any]) -> bytes:
    """The bytes a digest's ``hash`` is the SHA-256 of."""
    kept = {key: value for key, value in digest.items() if key not in _UNHASHED and value is not None}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_hash(digest: Digest) -> str:
    return hashlib.sha256(canonical(digest.as_json())).hexdigest()


def summarize(events: Iterable[AuditEvent]) -> list[ChainDigest]:
    """Each chain's count and last event among ``events`` (any order), sorted by chain. Events
    without a chain (written before the chains) are not digested: they have no hash to anchor."""
    heads: dict[str, ChainDigest] = {}
    for event in events:
        if event.chain is None or event.seq is None or event.hash is None:
            continue
        known = heads.get(event.chain)
        if known is None:
            heads[event.chain] = ChainDigest(chain=event.chain, count=1, seq=event.seq, hash=event.hash)
            continue
        last = (event.seq, event.hash) if event.seq > known.seq else (known.seq, known.hash)
        heads[event.chain] = ChainDigest(chain=event.chain, count=known.count + 1, seq=last[0], hash=last[1])
    return [heads[chain] for chain in sorted(heads)]


def unsigned(
    *, previous: Digest | None, to: str, chains: list[ChainDigest], made_at: str, key_id: str
) -> Digest:
    """The next digest after ``previous`` (None: the first), with its ``hash``, to be signed."""
    digest = Digest(
        from_=previous.to if previous else None,
        to=to,
        chains=chains,
        eventCount=sum(chain.count for chain in chains),
        previousHash=previous.hash if previous else None,
        madeAt=made_at,
        keyId=key_id,
    )
    return digest.model_copy(update={"hash": digest_hash(digest)})
