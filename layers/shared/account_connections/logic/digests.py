"""The audit digests (docs/audit.md, "Digests"): the job that makes one per period, and the
auditors' reads of them and of the signing key's public half.

A period runs from the end of the newest digest's (exclusive) to ``settle`` before now: every
event whose write started in it has committed and reached the events' index by then. Each run
reads the period's events (one Query a page of the events' index), summarizes each chain that
moved, hashes and signs the digest, and stores it after the newest one; a run that lost to
another run stores nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta

from account_connections.domain.audit import AuditEvent
from account_connections.domain.clock import isoformat
from account_connections.domain.digest import Digest, summarize, unsigned
from account_connections.logic.audit import time_range
from account_connections.ports import AuditLog, DigestStore, Page, Signer

# Events read a page (the export's largest page).
PAGE = 1000


def _period_events(log: AuditLog, after: str | None, upto: str) -> Iterator[AuditEvent]:
    """Every event with ``after < at <= upto`` (``after`` None: no lower bound). Times are
    milliseconds: the first after ``after`` is a millisecond later."""
    low = isoformat(datetime.fromisoformat(after) + timedelta(milliseconds=1)) if after else None
    token: str | None = None
    while True:
        page = log.export_events(low, upto, PAGE, token)
        yield from page.items
        token = page.next_token
        if not token:
            return


def make_digest(
    log: AuditLog, store: DigestStore, signer: Signer, *, now: datetime, settle_seconds: int
) -> Digest | None:
    """The next digest, signed and stored; None when the period would be empty of time (a run
    within ``settle`` of the last). Raises ``DigestRaced`` (another run stored one meanwhile) and
    ``DependencyUnavailable`` (KMS)."""
    previous = store.latest()
    to = isoformat(now - timedelta(seconds=settle_seconds))
    if previous is not None and to <= previous.to:
        return None
    chains = summarize(_period_events(log, previous.to if previous else None, to))
    digest = unsigned(previous=previous, to=to, chains=chains, made_at=isoformat(now), key_id=signer.key_id)
    assert digest.hash is not None
    signature = signer.sign(bytes.fromhex(digest.hash))
    signed = digest.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})
    store.append(signed)
    return signed


def list_digests(
    store: DigestStore, *, at_from: str | None, at_to: str | None, limit: int, next_token: str | None
) -> Page[Digest]:
    """The digests whose whole period is in the range, oldest first. Raises ``InvalidRequest``
    (dates, token)."""
    low, high = time_range(at_from, at_to)
    return store.digests(low, high, limit, next_token)
