"""Two independent checks of a proof's signature: AWS's documented SigV4 algorithm written out
with hmac, and botocore's SigV4Auth re-run over a request rebuilt from the proof alone.

Neither reuses acctconn's code: both start from the printed JSON, as the service will.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class Authorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str


def authorization(proof: dict[str, Any]) -> Authorization:
    match = AUTHORIZATION.fullmatch(header(proof, "Authorization"))
    assert match, header(proof, "Authorization")
    return Authorization(
        access_key=match["key"],
        date=match["date"],
        region=match["region"],
        service=match["service"],
        signed_headers=match["signed"].split(";"),
        signature=match["signature"],
    )


def header(proof: dict[str, Any], name: str) -> str:
    values = [value for key, value in proof["headers"].items() if key.lower() == name.lower()]
    assert len(values) == 1, f"{name}: {values}"
    return str(values[0])


def documented_signature(proof: dict[str, Any], secret_key: str) -> str:
    """SigV4 as AWS documents it (canonical request, string to sign, derived key), by hand."""
    auth = authorization(proof)
    url = httpx.URL(proof["url"])
    body = base64.b64decode(proof["body"])
    canonical_headers = "".join(
        f"{name}:{' '.join(header(proof, name).split())}\n" for name in sorted(auth.signed_headers)
    )
    canonical_request = "\n".join(
        [
            proof["method"],
            url.path or "/",
            url.query.decode(),
            canonical_headers,
            ";".join(sorted(auth.signed_headers)),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    amz_date = header(proof, "X-Amz-Date")
    scope = f"{amz_date[:8]}/{auth.region}/{auth.service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], auth.region, auth.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def botocore_signature(proof: dict[str, Any], secret_key: str, session_token: str | None) -> str:
    """botocore's SigV4Auth over the proof's method, url, body and headers, at its X-Amz-Date."""
    auth = authorization(proof)
    request = AWSRequest(
        method=proof["method"],
        url=proof["url"],
        data=base64.b64decode(proof["body"]),
        headers={name: value for name, value in proof["headers"].items() if name.lower() != "authorization"},
    )
    signer = SigV4Auth(Credentials(auth.access_key, secret_key, session_token), auth.service, auth.region)
    # add_auth would stamp the current time; the signature is a function of the proof's own.
    request.context["timestamp"] = header(proof, "X-Amz-Date")
    canonical_request = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical_request), request))
