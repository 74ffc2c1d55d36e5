"""Account proofs in tests: real proofs (made by ``acctconn``'s own signer) and an STS that checks
them as STS does, in-process.

``FakeSts`` stands where the service's HTTP session to STS stands: it rebuilds the canonical
request from what the service forwarded, recomputes the SigV4 signature with the secret it
issued, refuses a bad one with STS's ``SignatureDoesNotMatch`` (an unknown key with
``InvalidClientTokenId``), and answers ``GetCallerIdentity`` with the credentials' principal.
The fixture ``sts`` installs it behind the decision function's ``ProofVerifier``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials

from acctconn.proof import make_proof

ENDPOINT = "https://sts.us-east-1.amazonaws.com/"
# A principal of the administrator's account (111122223333), signed in through its Admin role.
ADMIN_SESSION = "arn:aws:sts::111122223333:assumed-role/Admin/admin-session"
_AUTH = re.compile(
    r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/sts/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>{arn}</Arn>
    <UserId>{user_id}</UserId>
    <Account>{account}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""
_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
</ErrorResponse>"""


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
        headers = {name.lower(): value for name, value in prepared.headers.items()}
        self.calls.append(headers)
        match = _AUTH.search(headers.get("authorization", ""))
        if match is None or match["key"] not in self.issued:  # an access key STS never issued
            return self._error(
                403, "InvalidClientTokenId", "The security token included in the request is invalid."
            )
        credentials, arn = self.issued[str(match["key"])]
        # As STS does: the canonical request covers the headers the signature names, no others.
        signed = match["signed"].split(";")
        request = AWSRequest(method=prepared.method, url=prepared.url, data=prepared.body,
                             headers={name: headers.get(name, "") for name in signed})  # fmt: skip
        issued = Credentials(str(credentials.access_key), str(credentials.secret_key), credentials.token)
        signer = SigV4Auth(issued, "sts", match["region"])
        request.context["timestamp"] = headers.get("x-amz-date", "")
        canonical = signer.canonical_request(request)
        if signer.signature(signer.string_to_sign(request, canonical), request) != match["signature"]:
            return self._error(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        account = arn.split(":")[4]
        body = _IDENTITY.format(arn=arn, user_id=f"AROA{account}:session", account=account)
        return Answer(200, body.encode())

    @staticmethod
    def _error(status: int, code: str, message: str) -> Answer:
        return Answer(status, _ERROR.format(code=code, message=message).encode())


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSts]:
    """The decision function's account proofs go to this STS."""
    from account_connections import wiring
    from account_connections.adapters.sts import StsProofVerifier

    fake = FakeSts()
    monkeypatch.setattr(wiring, "proof_verifier", lambda: StsProofVerifier(ENDPOINT, session=fake))
    yield fake
