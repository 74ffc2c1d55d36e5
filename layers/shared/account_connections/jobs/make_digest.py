"""The audit digest job (``DigestFunction``, on its EventBridge schedule); the logic is in
account_connections.logic.digests."""

from __future__ import annotations

from typing import Any

from account_connections import wiring
from account_connections.domain.clock import utcnow
from account_connections.domain.errors import DigestRaced
from account_connections.logic import digests
from account_connections.observability import logger, metrics
from account_connections.settings import DigestSettings, load_settings


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Make the period's digest. A run that another run beat, or one too soon after the last,
    makes none and succeeds (an error would only make Lambda run it again)."""
    config = load_settings(DigestSettings)
    try:
        digest = digests.make_digest(
            wiring.audit_log(), wiring.digests(), wiring.signer(), now=utcnow(),
            settle_seconds=config.digest_settle_seconds,
        )  # fmt: skip
    except DigestRaced:
        logger.info("another run stored the digest of this period first")
        return {"made": False, "reason": "raced"}
    if digest is None:
        logger.info("the last digest is newer than this run's period end: nothing to digest")
        return {"made": False, "reason": "too soon"}
    metrics.add_metric(name="AuditDigestsMade", unit="Count", value=1)
    metrics.add_metric(name="AuditEventsDigested", unit="Count", value=digest.eventCount)
    logger.info(
        "digest made",
        extra={"from": digest.from_, "to": digest.to, "chains": len(digest.chains),
               "eventCount": digest.eventCount, "hash": digest.hash},
    )  # fmt: skip
    return {"made": True, "from": digest.from_, "to": digest.to, "chains": len(digest.chains),
            "eventCount": digest.eventCount, "hash": digest.hash}  # fmt: skip
