"""The STS adapter of account proofs: sends a proof's rebuilt ``GetCallerIdentity`` to the
service's own STS endpoint and reads who signed it. The checks themselves are ``domain.proof``.

botocore's own HTTP session sends it: no redirect is followed, nothing is retried (a proof is
good once), and the request carries only what ``domain.proof.prepare`` kept.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.awsrequest import AWSRequest
from botocore.exceptions import HTTPClientError
from botocore.httpsession import URLLib3Session

from account_connections.domain.clock import utcnow
from account_connections.domain.errors import DependencyUnavailable
from account_connections.domain.proof import AccountProof, CallerIdentity, parse_identity, prepare, refused

_ERROR_CODE = re.compile(r"<Code>([A-Za-z]{1,64})</Code>")
_MAX_ANSWER = 64 * 1024


class StsProofVerifier:
    """The ``ProofVerifier`` over STS at ``endpoint_url`` (e.g. ``https://sts.us-east-1.amazonaws.com/``)."""

    def __init__(self, endpoint_url: str, session: Any | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.session = session or URLLib3Session(timeout=5, max_pool_connections=4)

    def verify(self, proof: AccountProof, connection_id: str) -> tuple[CallerIdentity, str]:
        """Who signed ``proof`` for ``connection_id``, and the proof's signature (to spend it once).

        Raises ``AccountProofRefused`` (with why: the checks, or STS's refusal) and
        ``DependencyUnavailable`` (STS did not answer).
        """
        call = prepare(proof, connection_id, self.endpoint_url, utcnow())
        request = AWSRequest(method="POST", url=self.endpoint_url, data=call.body, headers=call.headers)
        try:
            response = self.session.send(request.prepare())
        except HTTPClientError as exc:
            raise DependencyUnavailable("STS did not answer: try again in a moment") from exc
        text = response.content[:_MAX_ANSWER].decode("utf-8", "replace")
        if response.status_code == 200:
            return parse_identity(text), call.signature
        if response.status_code in (400, 403):
            code = _ERROR_CODE.search(text)
            raise refused(f"STS did not accept it ({code.group(1) if code else response.status_code})")
        raise DependencyUnavailable(f"STS answered {response.status_code}: try again in a moment")
