"""Tokens: the one-time approval links and the connection token, random and opaque (256 bits;
only the SHA-256 is stored), and the HMAC that binds a decision form to a link and a request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from enum import StrEnum

from account_connections.domain.connection import ShownRequest
from account_connections.domain.fields import Model

TOKEN_BYTES = 32  # 256 bits
# Retired links are kept this long past their expiry, so that they answer 410 rather than 404.
TOKEN_RETENTION = timedelta(days=30)


class TokenKind(StrEnum):
    CONNECTION_TOKEN = "CONNECTION_TOKEN"
    LINK = "LINK"


class TokenState(StrEnum):
    ACTIVE = "ACTIVE"
    USED = "USED"
    REPLACED = "REPLACED"
    # Withdrawn without a successor: the account's administrator was unregistered.
    REVOKED = "REVOKED"


class LinkToken(Model):
    """What the table keeps for a token, under its hash. A decision reads nothing else: the request
    as shown, the address the link went to and, while the workflow waits, copies of its task token
    and the CSRF secret (dropped when the token is retired)."""

    tokenHash: str
    connectionId: str
    kind: TokenKind
    state: TokenState = TokenState.ACTIVE
    createdAt: str
    expiresAt: str
    ttl: int
    request: ShownRequest | None = None
    approverEmail: str | None = None
    # The requester's address (never an approver of their own request) and, when the account's
    # registration names them, the only principals whose account proofs count.
    requesterEmail: str | None = None
    approverPrincipals: list[str] | None = None
    taskToken: str | None = None
    csrfSecret: str | None = None
    # The request's approval round when the token was made (a policy change starts a new one, and
    # approvals of an earlier round no longer count) and its quorum then: a decision through a
    # quorum-1 link needs no read of the connection.
    round: int | None = None
    quorum: int | None = None
    # The connection token's: the addresses that hold live links, told of a decision by proof.
    approverEmails: list[str] | None = None
    # The head of the connection's hash chain when the links were last written: a decision through
    # a quorum-1 link chains its events from it without reading the connection (when the chain
    # moved since, the decision's write fails and it reads the connection).
    chainSeq: int | None = None
    chainHead: str | None = None
    chainAt: str | None = None


def new_token() -> tuple[str, str]:
    """A fresh token and the hash that the table keeps in its place."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return secrets.token_hex(32)


def sign(secret: str, message: str) -> str:
    return hmac.new(bytes.fromhex(secret), message.encode(), hashlib.sha256).hexdigest()


def verify_signature(secret: str, message: str, signature: str) -> bool:
    """Whether ``signature`` is ``message``'s, in constant time. Compared as bytes: ``compare_digest``
    raises ``TypeError`` on a str with any non-ASCII character, which a forged form can send."""
    return hmac.compare_digest(sign(secret, message).encode(), signature.encode("utf-8", "surrogatepass"))
