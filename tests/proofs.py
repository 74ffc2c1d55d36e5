"""Account proofs in tests: real proofs (made by ``acctconn``'s own signer) and an STS that checks
them as STS does, in-process.

``FakeSts`` stands where the service's HTTP session to STS stands: it checks what the service
forwarded with the local stack's emulated STS check (``local.sts_signature.verify``: the SigV4
signature recomputed with the secret it issued, STS's answers for a bad one, an unknown key or a
stale date), and answers ``GetCallerIdentity`` with the credentials' principal.
The fixture ``sts`` installs it behind the decision function's ``ProofVerifier``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.credentials import ReadOnlyCredentials

from acctconn.proof import make_proof
from local import sts_signature
from local.sts_signature import SignedRequest

ENDPOINT = "https://sts.us-east-1.amazonaws.com/"
# A principal of the administrator's account (111122223333), signed in through its Admin role.
ADMIN_SESSION = "arn:aws:sts::111122223333:assumed-role/Admin/admin-session"
_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>{arn}</Arn>
    <UserId>{user_id}</UserId>
    <Account>{account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""


@dataclass
class Answer:
    status_code: int
    content: bytes


@dataclass
class FakeSts:
    """Issued credentials by access key: (secret, principal ARN); every call it answered."""

    issued: dict[str, tuple[ReadOnlyCredentials, str]] = field(default_factory=dict)
    calls: list[dict[str, str]] = field(default_factory=list)

    def credentials(self, arn: str) -> ReadOnlyCredentials:
        """Temporary credentials of ``arn`` (``arn:aws:sts::<acct>:assumed-role/<role>/<session>``)."""
        credentials = ReadOnlyCredentials(
            "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), secrets.token_urlsafe(40)
        )
        self.issued[str(credentials.access_key)] = (credentials, arn)
        return credentials

    def proof(self, connection_id: str, arn: str, *, endpoint: str | None = None) -> dict[str, Any]:
        """A real proof for ``connection_id``, signed now by a principal ``arn`` that STS knows."""
        return make_proof(connection_id, self.credentials(arn), "us-east-1", endpoint)

    def send(self, prepared: Any) -> Answer:
        """Answer as STS does, the signature checked by the local stack's emulated STS check."""
        headers = {name.lower(): value for name, value in prepared.headers.items()}
        self.calls.append(headers)
        url = urlsplit(prepared.url)
        body = prepared.body if isinstance(prepared.body, bytes) else str(prepared.body or "").encode()
        request = SignedRequest(prepared.method, url.path or "/", url.query, headers, body)
        key = sts_signature.credential_key(headers.get("authorization", ""))
        try:
            sts_signature.verify(request, self._lookup, "us-east-1", datetime.now(UTC))
        except sts_signature.StsError as refused:
            return Answer(refused.status, refused.xml("c6104cbe-af31-11e0-8154-cbc7ccf896c7"))
        assert key is not None  # the check passed, so the key is one this STS issued
        arn = self.issued[key[0]][1]
        account = arn.split(":")[4]
        identity = _IDENTITY.format(arn=arn, user_id=f"AROA{account}:session", account=account)
        return Answer(200, identity.encode())

    def _lookup(self, access_key: str) -> sts_signature.IssuedKey | None:
        issued = self.issued.get(access_key)
        if issued is None:
            return None
        credentials = issued[0]
        return sts_signature.IssuedKey(str(credentials.secret_key), credentials.token, None)


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSts]:
    """The decision function's account proofs go to this STS."""
    from account_connections import wiring
    from account_connections.adapters.sts import StsProofVerifier

    fake = FakeSts()
    monkeypatch.setattr(wiring, "proof_verifier", lambda: StsProofVerifier(ENDPOINT, session=fake))
    yield fake
