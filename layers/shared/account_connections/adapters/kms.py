"""The digests' signing key in KMS: ``kms:Sign`` (only the digest job's role may) and
``kms:GetPublicKey`` (the auditors' function). docs/audit.md, "The digest format"."""

from __future__ import annotations

import base64
import textwrap
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from account_connections.domain.digest import SIGNING_ALGORITHM
from account_connections.domain.errors import DependencyUnavailable


def pem(der: bytes) -> str:
    """A DER SubjectPublicKeyInfo as PEM (RFC 7468): base64 in lines of 64, between the labels."""
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


class KmsSigner:
    """Signs with the KMS key ``key_id``; its public key is read once per process."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._pem: str | None = None

    def sign(self, message: bytes) -> bytes:
        # RAW: KMS hashes the message with SHA-256 and signs that (the message is a digest's
        # 32-byte hash, well under RAW's 4096-byte limit).
        try:
            answer = self.kms.sign(
                KeyId=self.key_id, Message=message, MessageType="RAW", SigningAlgorithm=SIGNING_ALGORITHM
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable("the digest could not be signed") from exc
        return bytes(answer["Signature"])

    def public_key_pem(self) -> str:
        if self._pem is None:
            try:
                answer = self.kms.get_public_key(KeyId=self.key_id)
            except (ClientError, BotoCoreError) as exc:
                raise DependencyUnavailable("the digests' public key could not be read") from exc
            self._pem = pem(bytes(answer["PublicKey"]))
        return self._pem
