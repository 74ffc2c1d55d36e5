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
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ConfigDict, Field

from account_connections.domain import chain
from account_connections.domain.audit import AuditEvent
from account_connections.domain.fields import Model

VERSION = 1
SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"
# Fields that are not part of what the hash is over.
_UNHASHED = ("hash", "signature")


class ChainDigest(Model):
    """One chain's events in a period: how many, and the last one's place and hash."""

    chain: str = Field(
        description="The chain's name: CONNECTION#<id>, REGISTRY#SPACE#<id> or REGISTRY#ACCOUNT#<id>."
    )
    count: int = Field(description="How many of its events are in the period.")
    seq: int = Field(description="The seq of the last of them.")
    hash: str = Field(description="The hash of the last of them.")


class Digest(Model):
    """A period's digest (docs/audit.md, "The digest format")."""

    model_config = ConfigDict(populate_by_name=True)

    version: int = VERSION
    from_: str | None = Field(
        default=None, alias="from",
        description="The end of the previous digest's period (exclusive); null for the first digest.",
    )  # fmt: skip
    to: str = Field(description="The end of this period (inclusive): the period is from < at <= to.")
    chains: list[ChainDigest] = Field(description="Every chain with an event in the period, sorted by chain.")
    eventCount: int = Field(description="The sum of the chains' counts.")
    previousHash: str | None = Field(
        default=None, description="The previous digest's hash; null for the first."
    )
    madeAt: str = Field(description="When the job made it.")
    keyId: str = Field(description="The ARN of the KMS key that signed it.")
    signingAlgorithm: str = SIGNING_ALGORITHM
    hash: str | None = Field(
        default=None,
        description="SHA-256 (hex) of the canonical form: without hash and signature (docs/audit.md).",
    )
    signature: str | None = Field(
        default=None, description="Base64 RSASSA-PSS SHA-256 signature of the 32 bytes hash spells."
    )

    def as_json(self) -> dict[str, Any]:
        """The digest as auditors get it (``from``, not ``from_``)."""
        return self.model_dump(mode="json", by_alias=True)


def canonical(digest: Mapping[str, Any]) -> bytes:
    """The bytes a digest's ``hash`` is the SHA-256 of: the events' form, without ``signature`` too."""
    return chain.canonical(digest, _UNHASHED)


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
