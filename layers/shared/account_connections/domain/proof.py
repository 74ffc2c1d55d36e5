"""Account proofs (SPEC.md, "Decisions"): a SigV4-signed ``sts:GetCallerIdentity`` request that the
approver made with their own AWS credentials and never sent. The service checks it the way
Vault's AWS IAM auth method does since CVE-2020-16250, and sends it itself:

- the request is rebuilt for the service's own STS endpoint, never the client's URL, and the
  ``Host`` it was signed for must be that endpoint's;
- only the signed headers are forwarded (and ``Authorization``), each one once, none with a
  line break;
- the body must be exactly ``Action=GetCallerIdentity&Version=2011-06-15``;
- ``X-Account-Connection-Id`` must be signed and name the connection being decided, so a proof
  made for one request cannot decide another;
- ``X-Amz-Date`` must be signed and within five minutes of now;
- STS's answer is read strictly: exactly ``Arn``, ``UserId`` and ``Account``, the ARN in that
  account.

Pure functions: the adapter that sends the request is ``adapters.sts``.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timedelta
from typing import Annotated, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints

from account_connections.domain.errors import AccountProofRefused
from account_connections.domain.fields import StrictModel

BODY = "Action=GetCallerIdentity&Version=2011-06-15"
BINDING_HEADER = "x-account-connection-id"
MAX_SKEW = timedelta(minutes=5)
REQUIRED_SIGNED = frozenset({"host", "x-amz-date", BINDING_HEADER})
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]{16,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})/sts"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*),"
    r" ?Signature=(?P<signature>[0-9a-f]{64})"
)
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<service>sts|iam)::(?P<account>\d{12}):"
    r"(?P<resource>[\x21-\x7e]{1,2048})"
)

HeaderName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
HeaderValue = Annotated[str, StringConstraints(max_length=8192)]


class AccountProof(StrictModel):
    """The ``accountProof`` a decision carries: what ``acctconn prove`` prints."""

    method: Literal["POST"]
    url: Annotated[str, StringConstraints(max_length=2048)] = Field(
        description="Where the approver signed it for; the service sends it to its own STS endpoint."
    )
    body: Annotated[str, StringConstraints(max_length=256)] = Field(description="base64 of the signed body.")
    headers: dict[HeaderName, HeaderValue] = Field(max_length=32, description="The request's headers.")


class SignedCall(NamedTuple):
    """The request the service sends to its STS endpoint: the signed headers only, and the body."""

    headers: dict[str, str]
    body: bytes
    signature: str


class CallerIdentity(NamedTuple):
    account: str
    arn: str
    user_id: str

    @property
    def principal_arn(self) -> str:
        """The principal an approver list names: an assumed role's session is its role (the
        role's path is not in the session ARN: roles match by account and name)."""
        match = _ARN.fullmatch(self.arn)
        if match and match["service"] == "sts" and match["resource"].startswith("assumed-role/"):
            role = match["resource"].split("/")[1]
            return f"arn:{match['partition']}:iam::{match['account']}:role/{role}"
        return self.arn


def refused(why: str) -> AccountProofRefused:
    return AccountProofRefused(f"the account proof was refused: {why}")


def prepare(proof: AccountProof, connection_id: str, endpoint_url: str, now: datetime) -> SignedCall:
    """The call to send to ``endpoint_url`` for ``proof``, or ``AccountProofRefused`` saying why not."""
    headers: dict[str, str] = {}
    for name, value in proof.headers.items():
        lowered = name.lower()
        if lowered in headers:
            raise refused(f"the header {name} is given twice")
        if any(char in value for char in "\r\n\0") or not value.isascii() or not name.isascii():
            raise refused(f"the header {name} is not a plain ASCII line")
        headers[lowered] = value.strip()
    try:
        body = base64.b64decode(proof.body.encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise refused("the body is not base64") from exc
    if body != BODY.encode():
        raise refused(f"the body must be exactly {BODY}")
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise refused("it is not a SigV4 signature for sts (make it with: acctconn prove CONNECTION_ID)")
    signed = match["signed"].split(";")
    missing = sorted(REQUIRED_SIGNED - set(signed))
    if missing:
        raise refused(f"these headers must be signed: {', '.join(missing)}")
    if any(name not in headers for name in signed):
        raise refused("a signed header is missing from the proof")
    if headers[BINDING_HEADER] != connection_id:
        raise refused("it was made for another connection")
    expected_host = urlsplit(endpoint_url).netloc.lower()
    if headers["host"].lower() != expected_host:
        raise refused(
            f"it was signed for {headers['host']!r}, not this service's STS endpoint {expected_host!r}"
        )
    try:
        signed_at = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=now.tzinfo)
    except ValueError as exc:
        raise refused("X-Amz-Date is not a SigV4 timestamp") from exc
    if abs(now - signed_at) > MAX_SKEW:
        raise refused("it was signed more than five minutes from now: make a new one")
    forwarded = {name: headers[name] for name in signed}
    forwarded["authorization"] = headers["authorization"]
    return SignedCall(headers=forwarded, body=body, signature=match["signature"])


def parse_identity(xml_text: str) -> CallerIdentity:
    """STS's ``GetCallerIdentityResponse``, read strictly. Raises ``AccountProofRefused``."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise refused("STS's answer could not be read") from exc
    result = root.find(f"{_STS_NS}GetCallerIdentityResult")
    if root.tag != f"{_STS_NS}GetCallerIdentityResponse" or result is None:
        raise refused("STS's answer is not a GetCallerIdentity response")
    fields = {child.tag.removeprefix(_STS_NS): (child.text or "").strip() for child in result}
    if set(fields) != {"Arn", "UserId", "Account"} or len(result) != 3:
        raise refused("STS's answer does not have exactly Arn, UserId and Account")
    arn = _ARN.fullmatch(fields["Arn"])
    if not re.fullmatch(r"\d{12}", fields["Account"]) or arn is None or arn["account"] != fields["Account"]:
        raise refused("STS's answer names no principal of an account")
    if not fields["UserId"] or len(fields["UserId"]) > 256:
        raise refused("STS's answer has no user id")
    return CallerIdentity(account=fields["Account"], arn=fields["Arn"], user_id=fields["UserId"])


def matches(principal_arn: str, allowed: list[str]) -> bool:
    """Whether ``principal_arn`` is one of ``allowed`` (a role by account and name, whatever its path)."""

    def key(arn: str) -> str:
        match = _ARN.fullmatch(arn)
        if match and match["service"] == "iam" and match["resource"].startswith("role/"):
            return f"{match['partition']}:{match['account']}:role/{match['resource'].rsplit('/', 1)[-1]}"
        return arn

    return key(principal_arn) in {key(arn) for arn in allowed}
