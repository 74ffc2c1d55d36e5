"""SigV4 for the emulated STS: a request signed with credentials that moto issued is checked as
AWS checks it, before moto answers it.

moto checks no signature: its STS names the caller from the access key in the ``Authorization``
header alone (see ../shared/LOCAL_STACK_NOTES.md). An account proof (SPEC "Decisions") is only
worth something if STS refuses a request whose signature is not the key owner's, so the local
stack wraps moto's WSGI application in ``StsSignatureCheck``. It takes over a request when

- it goes to STS: its credential scope names ``sts``, or its ``Host`` is an STS endpoint, and
- it is signed with a key shaped like AWS's: a temporary key (``ASIA...``, what ``sts:AssumeRole``
  issues) or a long-term key (``AKIA...``, what ``iam:CreateAccessKey`` issues).

Everything else reaches moto unchanged: every other service, and the functions' and the seed's
calls with the stack's dummy credentials, which are not shaped like AWS keys. A request it takes
over is verified from the raw HTTP request as it arrived (method, path, query, the headers named
in ``SignedHeaders`` with the ``Host`` the client sent, the body's SHA-256) against the secret
moto keeps for that key (``moto_issued_key``), and refused with STS's own answers:

- a key moto never issued (or deactivated), a missing or other session token: 403
  ``InvalidClientTokenId``;
- credentials past their expiration: 403 ``ExpiredToken``;
- an ``X-Amz-Date`` more than 15 minutes off: 403 ``SignatureDoesNotMatch`` ("Signature expired");
- a scope for another date, region or service, or any other signature: 403
  ``SignatureDoesNotMatch``;
- no ``X-Amz-Date``, ``host`` not signed, a malformed ``Authorization``: 400 ``IncompleteSignature``.

A request that passes goes on to moto, which answers it (``GetCallerIdentity``: the assumed role).
Presigned (query-string) requests are not checked; moto answers them as its default account.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from botocore.utils import normalize_url_path

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "sts"
MAX_SKEW = timedelta(minutes=15)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# What AWS access key ids look like: a four-letter kind, then 16 upper-case letters and digits.
TEMPORARY_KEY = re.compile(r"ASIA[A-Z0-9]{16}")
LONG_TERM_KEY = re.compile(r"AKIA[A-Z0-9]{16}")
STS_HOST = re.compile(r"sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?(:\d+)?", re.IGNORECASE)
_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")
_PARAMETER = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class IssuedKey:
    """What STS knows of a key it (or IAM) issued."""

    secret_access_key: str
    session_token: str | None  # temporary credentials only
    expiration: datetime | None  # temporary credentials only
    active: bool = True


Lookup = Callable[[str], IssuedKey | None]


@dataclass(frozen=True)
class StsError(Exception):
    """An answer STS gives instead of running the action."""

    status: int
    code: str
    message: str

    def xml(self, request_id: str) -> bytes:
        return (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
            "  <Error>\n"
            "    <Type>Sender</Type>\n"
            f"    <Code>{escape(self.code)}</Code>\n"
            f"    <Message>{escape(self.message)}</Message>\n"
            "  </Error>\n"
            f"  <RequestId>{request_id}</RequestId>\n"
            "</ErrorResponse>\n"
        ).encode()


SIGNATURE_DOES_NOT_MATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def _mismatch(message: str = SIGNATURE_DOES_NOT_MATCH) -> StsError:
    return StsError(403, "SignatureDoesNotMatch", message)


def _incomplete(message: str) -> StsError:
    return StsError(400, "IncompleteSignature", message)


INVALID_TOKEN = StsError(
    403, "InvalidClientTokenId", "The security token included in the request is invalid."
)
EXPIRED_TOKEN = StsError(403, "ExpiredToken", "The security token included in the request is expired")


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as it reached the server: what its signature is computed over."""

    method: str
    raw_path: str  # as sent, percent-encoding included
    raw_query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(frozen=True)
class Authorization:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


def credential_key(authorization: str) -> tuple[str, str] | None:
    """(access key, scope's service) of a SigV4 ``Authorization`` header, or None."""
    if not authorization.startswith(ALGORITHM + " "):
        return None
    found = _CREDENTIAL.search(authorization)
    if not found:
        return None
    parts = found.group(1).split("/")
    return (parts[0], parts[3] if len(parts) == 5 else "")


def parse_authorization(authorization: str) -> Authorization:
    """The parts of ``AWS4-HMAC-SHA256 Credential=.../date/region/service/aws4_request,
    SignedHeaders=a;b, Signature=hex``; raises ``StsError`` (IncompleteSignature)."""
    parameters = dict(_PARAMETER.findall(authorization.removeprefix(ALGORITHM)))
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parameters.get(name):
            raise _incomplete(
                f"Authorization header requires '{name}' parameter. Authorization={authorization}"
            )
    scope = parameters["Credential"].split("/")
    if len(scope) != 5:
        raise _incomplete(
            "Credential should have five parts (key/date/region/service/aws4_request), "
            f"not {parameters['Credential']!r}"
        )
    access_key, date, region, service, terminator = scope
    return Authorization(
        access_key=access_key,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=parameters["SignedHeaders"].split(";"),
        signature=parameters["Signature"],
    )


def _uri_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_query(raw_query: str) -> str:
    """Each parameter decoded then URI-encoded (RFC 3986), sorted by name, then value."""
    pairs = []
    for pair in raw_query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        pairs.append((_uri_encode(unquote(name)), _uri_encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(request: SignedRequest, signed_headers: list[str]) -> str:
    """SigV4's canonical request over the headers the client signed (not the ones it sent)."""
    headers = "".join(f"{name}:{' '.join((request.header(name) or '').split())}\n" for name in signed_headers)
    return "\n".join(
        [
            request.method.upper(),
            quote(normalize_url_path(request.raw_path or "/"), safe="/~"),  # as botocore: non-S3
            canonical_query(request.raw_query),
            headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def signature(request: SignedRequest, auth: Authorization, amz_date: str, secret_access_key: str) -> str:
    """The SigV4 signature of ``request`` for ``auth``'s scope, with this secret."""
    scope = f"{auth.date}/{auth.region}/{auth.service}/{auth.terminator}"
    digest = hashlib.sha256(canonical_request(request, auth.signed_headers).encode()).hexdigest()
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, digest])
    key = f"AWS4{secret_access_key}".encode()
    for part in (auth.date, auth.region, auth.service, auth.terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _stamp(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


def verify(request: SignedRequest, lookup: Lookup, region: str, now: datetime) -> None:
    """Check ``request`` as STS in ``region`` does, with the secret ``lookup`` gives for its
    key; raises ``StsError`` with STS's answer."""
    auth = parse_authorization(request.header("authorization") or "")
    issued = lookup(auth.access_key)
    if issued is None or not issued.active:
        raise INVALID_TOKEN
    if issued.session_token is not None and request.header("x-amz-security-token") != issued.session_token:
        raise INVALID_TOKEN
    if issued.expiration is not None and issued.expiration <= now:
        raise EXPIRED_TOKEN
    amz_date = request.header("x-amz-date")
    if not amz_date:
        raise _incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.") from None
    if "host" not in auth.signed_headers:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    if auth.date != amz_date[:8]:
        raise _mismatch(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{auth.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    if auth.service != SERVICE:
        raise _mismatch(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if auth.region != region:
        raise _mismatch("Credential should be scoped to a valid region. ")
    if auth.terminator != "aws4_request":
        raise _mismatch(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{auth.terminator}'."
        )
    if signed_at < now - MAX_SKEW:
        raise _mismatch(
            f"Signature expired: {amz_date} is now earlier than {_stamp(now - MAX_SKEW)} "
            f"({_stamp(now)} - 15 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise _mismatch(
            f"Signature not yet current: {amz_date} is still later than {_stamp(now + MAX_SKEW)} "
            f"({_stamp(now)} + 15 min.)"
        )
    expected = signature(request, auth, amz_date, issued.secret_access_key)
    if not hmac.compare_digest(expected, auth.signature):
        raise _mismatch()


def moto_issued_key(access_key_id: str) -> IssuedKey | None:
    """The secret (and, for temporary credentials, the session token and expiration) that moto
    keeps for a key it issued: IAM holds every key of every account, STS the assumed roles."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, partitions in list(iam_backends.items()):
        for partition, iam in list(partitions.items()):
            key = iam.access_keys.get(access_key_id)
            if key is None:
                continue
            active = key.status == "Active"
            if not TEMPORARY_KEY.fullmatch(access_key_id):
                return IssuedKey(key.secret_access_key, None, None, active)
            role = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key_id)
            if role is None:
                return None
            expiration = role.expiration
            if expiration.tzinfo is None:  # moto keeps naive UTC
                expiration = expiration.replace(tzinfo=UTC)
            return IssuedKey(role.secret_access_key, role.session_token, expiration, active)
    return None


def _request_from(environ: dict[str, Any]) -> SignedRequest:
    """The request as it arrived, its body read (and put back for the application)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        body = environ["wsgi.input"].read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = environ["wsgi.input"].read()
        environ["CONTENT_LENGTH"] = str(len(body))
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/")
    raw_path, _, raw_query = raw_uri.partition("?")
    if "://" in raw_path:  # an absolute-form request target
        raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
    return SignedRequest(environ["REQUEST_METHOD"], raw_path, raw_query, headers, body)


class StsSignatureCheck:
    """WSGI middleware in front of moto's application: checks the SigV4 signature of STS
    requests signed with keys moto issued (see the module's docstring)."""

    def __init__(
        self,
        app: WsgiApp,
        region: str,
        lookup: Lookup = moto_issued_key,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.region = region
        self.lookup = lookup
        self.clock = clock

    def applies(self, environ: dict[str, Any]) -> bool:
        credential = credential_key(str(environ.get("HTTP_AUTHORIZATION") or ""))
        if credential is None:
            return False
        access_key, service = credential
        to_sts = service.lower() == SERVICE or bool(STS_HOST.fullmatch(str(environ.get("HTTP_HOST") or "")))
        if not to_sts:
            return False
        return bool(TEMPORARY_KEY.fullmatch(access_key) or LONG_TERM_KEY.fullmatch(access_key))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.applies(environ):
            return self.app(environ, start_response)
        request = _request_from(environ)
        try:
            verify(request, self.lookup, self.region, self.clock())
        except StsError as error:
            request_id = str(uuid.uuid4())
            body = error.xml(request_id)
            start_response(
                f"{error.status} {'Forbidden' if error.status == 403 else 'Bad Request'}",
                [
                    ("Content-Type", "text/xml"),
                    ("Content-Length", str(len(body))),
                    ("x-amzn-RequestId", request_id),
                ],
            )
            return [body]
        return self.app(environ, start_response)
