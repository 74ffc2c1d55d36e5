"""Account proofs: a SigV4-signed ``sts:GetCallerIdentity`` request that is never sent.

The approver signs the request with their own AWS credentials and hands it to the service;
the service rebuilds it from the signed headers, sends it to its own STS endpoint and learns
from STS's answer which principal signed it. The header ``X-Account-Connection-Id`` is signed
too, so a proof made for one connection cannot decide another (the shape of Vault's AWS IAM
auth method). See SPEC "Decisions: who may decide, and the proof they give".
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any

import botocore.session
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from acctconn.errors import AuthError, CliError, ExitCode

BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
CONNECTION_HEADER = "X-Account-Connection-Id"
SERVICE = "sts"
DEFAULT_REGION = "us-east-1"
REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d+")


def sts_url(region: str) -> str:
    return f"https://sts.{region}.amazonaws.com/"


def endpoint_url(endpoint: str) -> str:
    """The URL a request to ``endpoint`` (e.g. ``http://127.0.0.1:5000``) goes to: path ``/`` if none."""
    url = httpx.URL(endpoint)
    return str(url.copy_with(path=url.path or "/"))


def make_proof(
    connection_id: str,
    credentials: ReadOnlyCredentials,
    region: str,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """The ``accountProof`` for ``connection_id``, signed now with ``credentials`` for ``region``.

    Signed headers: host, content-type, x-account-connection-id, x-amz-date, and
    x-amz-security-token when the credentials are temporary. ``endpoint`` replaces the
    regional STS URL (the local stack's emulated AWS), still signed for ``region``.
    """
    url = endpoint_url(endpoint) if endpoint else sts_url(region)
    request = AWSRequest(
        method="POST",
        url=url,
        data=BODY,
        headers={"Content-Type": CONTENT_TYPE, CONNECTION_HEADER: connection_id},
    )
    signer = SigV4Auth(credentials, SERVICE, region)
    # The Host header is signed; put it in the request so the proof carries what was signed
    # (botocore would derive the same value from the URL and leave it out of the headers).
    request.headers["Host"] = signer.headers_to_sign(request)["host"]
    signer.add_auth(request)
    return {
        "method": request.method,
        "url": url,
        "body": base64.b64encode(BODY).decode("ascii"),
        "headers": dict(request.headers.items()),
    }


def session(profile: str | None) -> botocore.session.Session:
    try:
        return botocore.session.Session(profile=profile)
    except BotoCoreError as exc:
        raise AuthError(f"AWS configuration: {exc}") from None


def resolve_region(aws: botocore.session.Session, region: str | None) -> str:
    """``--region``, else ``AWS_REGION``, else the session's (``AWS_DEFAULT_REGION``, then the
    profile's), else us-east-1; a usage error unless it looks like a region name."""
    try:
        chosen = region or os.environ.get("AWS_REGION") or aws.get_config_variable("region")
    except BotoCoreError as exc:
        raise AuthError(f"AWS configuration: {exc}") from None
    chosen = str(chosen or DEFAULT_REGION)
    if not REGION.fullmatch(chosen):
        raise CliError(f"{chosen!r} is not an AWS region name (e.g. us-east-1)", ExitCode.USAGE)
    return chosen


def load_credentials(aws: botocore.session.Session) -> ReadOnlyCredentials:
    """The caller's credentials from botocore's chain (env, profile, SSO, process, IMDS, ...)."""
    try:
        credentials = aws.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except BotoCoreError as exc:
        # ProfileNotFound, an expired SSO token, a failing credential_process, ...
        login = f"aws sso login --profile {aws.profile}" if aws.profile else "aws sso login"
        hint = f" (sign in again: {login})" if "sso" in type(exc).__name__.lower() else ""
        raise AuthError(f"cannot load AWS credentials: {exc}{hint}") from None
    if frozen is None or not frozen.access_key or not frozen.secret_key:
        raise AuthError(
            "no AWS credentials found: configure a profile (--profile or AWS_PROFILE), "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or sign in with aws sso login"
        )
    return frozen
