"""Identity for the local stack: the JWTs that a user pool would issue, and the checks that API
Gateway's JWT authorizer makes before a route's function sees the claims.

A key pair is generated at start; tokens are signed with it (RS256) for the issuer and
audience configured on the stack's authorizer, and carry the seeded user's groups in the
template's groups claim.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from local.deployed import JwtAuthorizerConfig

TOKEN_LIFETIME_SECONDS = 3600


def _b64(number: int) -> str:
    data = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    """Signs tokens for one issuer and audience."""

    issuer: str
    audience: str
    groups_claim: str

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex[:16]

    def issue(self, sub: str, groups: list[str], lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        now = int(time.time())
        claims = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "token_use": "id",
            "username": sub,
            self.groups_claim: groups,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        key = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.key_id,
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }
        return {"keys": [key]}

    def openid_configuration(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"]}  # fmt: skip

    def verify(self, authorization: str | None, authorizer: JwtAuthorizerConfig) -> dict[str, Any] | None:
        """The claims, if the token passes the checks API Gateway's JWT authorizer makes:
        a ``Bearer`` token (the prefix is optional, as in API Gateway), signed by a key of the
        issuer's JWKS, ``iss`` equal to the configured issuer, ``aud`` (or ``client_id``) one of
        the configured audiences, and ``exp``/``nbf``/``iat`` valid. None otherwise."""
        if not authorization:
            return None
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key_id or header.get("alg") != "RS256":
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                issuer=authorizer.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        audiences = claims.get("aud", claims.get("client_id"))
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if not set(audiences) & set(authorizer.audience):
            return None
        return claims


def render_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway passes them to the function: every value a string, arrays as
    ``"[a b]"``, numbers and booleans in their JSON spelling."""
    rendered = {}
    for name, value in claims.items():
        if isinstance(value, list):
            rendered[name] = "[" + " ".join(str(item) for item in value) + "]"
        elif isinstance(value, bool):
            rendered[name] = "true" if value else "false"
        elif isinstance(value, dict):
            rendered[name] = json.dumps(value, separators=(",", ":"))
        else:
            rendered[name] = str(value)
    return rendered
