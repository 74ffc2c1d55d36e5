"""Offline checks of an export against the service's signed digests (docs/audit.md, "Digests"),
reimplemented here from that page alone, like the chain checks of :mod:`acctconn.verify`.

Pure functions over data already read::

    digests = load_digests(open("digests.json", "rb").read())
    key = load_public_key(open("digest-key.pem", "rb").read())
    report = check_digests(digests, key, lines)        # lines: acctconn.verify.read_events(...)

Each digest's ``hash`` and signature (``bad-signature``), the digests' own chain
(``missing-digest``), and each period's events against the chains the digest names
(``digest-mismatch``). Events outside every digest's period are not covered: counted, and a
problem (``uncovered``) only when the caller asks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from acctconn.verify import HASH, Line, canonical

BAD_SIGNATURE = "bad-signature"  # a digest whose hash or signature does not hold
MISSING_DIGEST = "missing-digest"  # the digests' chain is broken: one is missing (or was replaced)
DIGEST_MISMATCH = "digest-mismatch"  # a period's events differ from what its digest records
UNCOVERED = "uncovered"  # events outside every digest's period (a problem only when asked)

SIGNING_ALGORITHM = "RSASSA_PSS_SHA_256"
_UNHASHED = ("hash", "signature")


@dataclass(frozen=True)
class DigestProblem:
    kind: str
    period: str | None
    chain: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "period": self.period, "chain": self.chain, "detail": self.detail}

    def __str__(self) -> str:
        where = [f"digest {self.period}" if self.period else "digests"]
        if self.chain:
            where.append(f"chain {self.chain}")
        return f"{self.kind}: {', '.join(where)}: {self.detail}"


@dataclass
class DigestReport:
    digests: int = 0
    problems: list[DigestProblem] = field(default_factory=list)
    #: Where the digests end (the last one's ``to``), and the events of the file after it or
    #: before the first one's ``from``: not covered by any digest of the file.
    last_to: str | None = None
    uncovered: int = 0
    uncovered_problems: list[DigestProblem] = field(default_factory=list)

    def failures(self, *, strict: bool = False) -> list[DigestProblem]:
        return self.problems + (self.uncovered_problems if strict else [])


# ---- reading ------------------------------------------------------------------------------------


def load_digests(data: bytes) -> list[dict[str, Any]]:
    """The digests of ``acctconn audit digests``: a JSON array of objects. Raises ``ValueError``."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError("not a JSON array of digests (objects), as acctconn audit digests writes")
    return value


def load_public_key(data: bytes) -> rsa.RSAPublicKey:
    """An RSA public key in PEM (SubjectPublicKeyInfo). Raises ``ValueError``."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key: the digests are signed with RSASSA-PSS")
    return key


def digest_hash(digest: Mapping[str, Any]) -> str:
    """SHA-256 of a digest's canonical form: the events' form without ``signature`` too
    (docs/audit.md, "The digest format")."""
    return hashlib.sha256(canonical(digest, _UNHASHED)).hexdigest()


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except (ValueError, TypeError):
        return None


# ---- checking -----------------------------------------------------------------------------------


def _period(digest: Mapping[str, Any]) -> str:
    return f"{digest.get('from') or 'the beginning'}..{digest.get('to')}"


def _shape(digest: Mapping[str, Any]) -> str | None:
    """What makes ``digest`` unreadable as a digest, or None."""
    if _instant(digest.get("to")) is None:
        return "no readable 'to'"
    if digest.get("from") is not None and _instant(digest.get("from")) is None:
        return "'from' is not a date-time"
    chains = digest.get("chains")
    if not isinstance(chains, list):
        return "no 'chains' list"
    for entry in chains:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("chain"), str)
            and all(isinstance(entry.get(name), int) and not isinstance(entry.get(name), bool)
                    for name in ("count", "seq"))
            and isinstance(entry.get("hash"), str)
        ):  # fmt: skip
            return f"a chains entry is not {{chain, count, seq, hash}}: {json.dumps(entry)[:120]}"
    if not isinstance(digest.get("hash"), str) or not HASH.fullmatch(digest["hash"]):
        return "'hash' is not 64 lowercase hex digits"
    if not isinstance(digest.get("signature"), str):
        return "no 'signature'"
    if digest.get("eventCount") != sum(entry["count"] for entry in chains):
        return "its eventCount is not the sum of its chains' counts"
    return None


def _check_signature(digest: Mapping[str, Any], key: rsa.RSAPublicKey) -> str | None:
    """Why ``digest`` is not as its signer made it, or None."""
    if digest.get("signingAlgorithm") != SIGNING_ALGORITHM:
        return f"signingAlgorithm is {digest.get('signingAlgorithm')!r}, not {SIGNING_ALGORITHM}"
    if digest_hash(digest) != digest["hash"]:
        return "its hash is not the SHA-256 of its canonical form: the digest was changed after it was signed"
    try:
        signature = base64.b64decode(digest["signature"], validate=True)
    except (binascii.Error, ValueError):
        return "its signature is not base64"
    try:
        # KMS signs the message (the hash's 32 bytes) as RAW: it hashes it with SHA-256 itself.
        key.verify(
            signature,
            bytes.fromhex(digest["hash"]),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return "its signature does not verify with the public key: not signed by the digests' key"
    return None


@dataclass
class _Seen:
    count: int = 0
    seq: int = 0
    hash: Any = None


def _events_in(lines: Iterable[Line], low: datetime | None, high: datetime) -> dict[str, _Seen]:
    """Per chain, the file's chained events with ``low < at <= high``: how many, and the last."""
    seen: dict[str, _Seen] = {}
    for line in lines:
        event = line.event
        chain, seq, at = event.get("chain"), event.get("seq"), _instant(event.get("at"))
        if not isinstance(chain, str) or not isinstance(seq, int) or at is None:
            continue  # unchained or unreadable: the chain checks report it
        if (low is not None and at <= low) or at > high:
            continue
        found = seen.setdefault(chain, _Seen())
        found.count += 1
        if seq >= found.seq:
            found.seq, found.hash = seq, event.get("hash")
    return seen


def _compare(digest: Mapping[str, Any], lines: list[Line], ends_at: dict[str, int]) -> list[DigestProblem]:
    """The period's events of ``lines`` against ``digest``; ``ends_at``: each chain's last seq in
    the whole file."""
    period = _period(digest)
    low, high = _instant(digest.get("from")), _instant(digest["to"])
    assert high is not None
    seen = _events_in(lines, low, high)
    problems: list[DigestProblem] = []
    for entry in digest["chains"]:
        chain = entry["chain"]
        found = seen.pop(chain, None)
        head = entry["hash"][:12]
        recorded = f"the digest records {entry['count']} events up to seq {entry['seq']} (hash {head}…)"
        if found is None:
            ends = ends_at.get(chain)
            if ends is not None and ends < entry["seq"]:
                why = f"the export's chain ends at seq {ends}, before the period: events cut from the end?"
            else:
                why = "the export has none of its events in the period: chain left out?"
            problems.append(DigestProblem(DIGEST_MISMATCH, period, chain, f"{recorded}; {why}"))
        elif (found.count, found.seq, found.hash) != (entry["count"], entry["seq"], entry["hash"]):
            head = str(found.hash)[:12]
            why = (
                "events cut from the end?"
                if found.seq < entry["seq"]
                else "events removed, added or rewritten?"
            )
            problems.append(DigestProblem(DIGEST_MISMATCH, period, chain,
                                          f"{recorded}; the export has {found.count} up to seq {found.seq} "
                                          f"(hash {head}…): {why}"))  # fmt: skip
    for chain, found in sorted(seen.items()):
        detail = (
            f"the export has {found.count} events of it in the period (up to seq {found.seq}) that the "
            "digest does not record: inserted?"
        )
        problems.append(DigestProblem(DIGEST_MISMATCH, period, chain, detail))
    return problems


def check_digests(digests: list[dict[str, Any]], key: rsa.RSAPublicKey, lines: list[Line]) -> DigestReport:
    """Every check of docs/audit.md, "Check an export against the digests", over ``digests`` (as
    read from the file), the public ``key`` and the export's ``lines``."""
    report = DigestReport(digests=len(digests))
    readable: list[dict[str, Any]] = []
    for digest in digests:
        broken = _shape(digest)
        if broken:
            report.problems.append(
                DigestProblem(BAD_SIGNATURE, _period(digest), None, f"not a digest: {broken}")
            )
            continue
        wrong = _check_signature(digest, key)
        if wrong:
            report.problems.append(DigestProblem(BAD_SIGNATURE, _period(digest), None, wrong))
        readable.append(digest)
    readable.sort(key=lambda digest: _instant(digest["to"]) or datetime.min)

    for previous, digest in zip(readable, readable[1:], strict=False):
        if digest.get("previousHash") != previous["hash"]:
            detail = (
                f"its previousHash is not the hash of the digest before it in the file "
                f"({_period(previous)}): a digest between them is missing or was replaced"
            )
            report.problems.append(DigestProblem(MISSING_DIGEST, _period(digest), None, detail))
        elif _instant(digest.get("from")) != _instant(previous["to"]):
            report.problems.append(DigestProblem(
                MISSING_DIGEST, _period(digest), None,
                f"its period does not start where the one before it ends ({previous['to']})",
            ))  # fmt: skip
    ends_at: dict[str, int] = {}
    for line in lines:
        chain, seq = line.event.get("chain"), line.event.get("seq")
        if isinstance(chain, str) and isinstance(seq, int):
            ends_at[chain] = max(seq, ends_at.get(chain, 0))
    for digest in readable:
        report.problems.extend(_compare(digest, lines, ends_at))

    if readable:
        first_from = _instant(readable[0].get("from"))
        last_to = _instant(readable[-1]["to"])
        report.last_to = str(readable[-1]["to"])
        after = before = 0
        for line in lines:
            at = _instant(line.event.get("at"))
            if at is None or not isinstance(line.event.get("chain"), str):
                continue
            if last_to is not None and at > last_to:
                after += 1
            elif first_from is not None and at <= first_from:
                before += 1
        report.uncovered = after + before
        if after:
            detail = f"{after} events after the last digest ({report.last_to}): not covered yet"
            report.uncovered_problems.append(DigestProblem(UNCOVERED, None, None, detail))
        if before:
            report.uncovered_problems.append(DigestProblem(
                UNCOVERED, None, None,
                f"{before} events before the first digest's period ({readable[0]['from']}): "
                "its digests are not in the file",
            ))  # fmt: skip
    else:
        report.uncovered = sum(1 for line in lines if isinstance(line.event.get("chain"), str))
        if report.uncovered:
            report.uncovered_problems.append(
                DigestProblem(UNCOVERED, None, None, f"{report.uncovered} events and no digest to cover them")
            )
    return report
