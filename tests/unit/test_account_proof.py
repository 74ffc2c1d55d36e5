"""The account proof's checks (domain.proof), each refusal with what an attacker would try: the
service never follows the client's URL, forwards only signed headers, requires the exact body,
the binding header signed and equal to the connection, a fresh X-Amz-Date, and reads STS strictly.
Proofs are real: signed by acctconn's own signer with throwaway credentials."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from account_connections.domain.errors import AccountProofRefused
from account_connections.domain.proof import (
    AccountProof,
    CallerIdentity,
    matches,
    parse_identity,
    prepare,
)
from acctconn.proof import make_proof

CONNECTION = "6f1c2b8e-0d4e-4c5a-9d55-1f2e3a4b5c6d"
ENDPOINT = "https://sts.us-east-1.amazonaws.com/"
CREDENTIALS = ReadOnlyCredentials("ASIAEXAMPLEEXAMPLE00", "secret/key+example", "session-token")


def proof(**changes: Any) -> dict[str, Any]:
    made = make_proof(CONNECTION, CREDENTIALS, "us-east-1")
    made.update(changes)
    return made


def now_of(made: dict[str, Any]) -> datetime:
    return datetime.strptime(made["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def check(made: dict[str, Any], *, connection: str = CONNECTION, endpoint: str = ENDPOINT,
          now: datetime | None = None) -> Any:  # fmt: skip
    return prepare(AccountProof.model_validate(made), connection, endpoint, now or now_of(made))


def refusal(made: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(AccountProofRefused) as caught:
        check(made, **kwargs)
    return caught.value.detail


def test_a_proof_made_by_acctconn_passes_and_forwards_only_what_was_signed() -> None:
    made = proof()
    made["headers"]["X-Injected"] = "not signed"
    call = check(made)
    assert call.body == b"Action=GetCallerIdentity&Version=2011-06-15"
    assert "x-injected" not in call.headers
    assert set(call.headers) == {
        "authorization", "content-type", "host", "x-account-connection-id", "x-amz-date",
        "x-amz-security-token",
    }  # fmt: skip
    assert call.headers["host"] == "sts.us-east-1.amazonaws.com"


def test_a_proof_for_another_connection_is_refused() -> None:
    assert "another connection" in refusal(proof(), connection="00000000-0000-0000-0000-000000000000")


def test_a_proof_signed_for_another_host_is_refused_whatever_url_it_names() -> None:
    made = make_proof(CONNECTION, CREDENTIALS, "us-east-1", "https://evil.example/")
    assert "signed for 'evil.example'" in refusal(made)
    # The client's URL is never followed: only the Host it signed matters, and it must be ours.
    assert check(proof(url="https://evil.example/steal")).headers["host"] == "sts.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    "body",
    [
        "Action=GetCallerIdentity&Version=2011-06-15&Extra=1",
        "Action=AssumeRole&RoleArn=arn:aws:iam::111122223333:role/Admin&Version=2011-06-15",
        "",
    ],
)
def test_any_other_body_is_refused(body: str) -> None:
    assert "body must be exactly" in refusal(proof(body=base64.b64encode(body.encode()).decode()))


def test_a_body_that_is_not_base64_is_refused() -> None:
    assert "not base64" in refusal(proof(body="***"))


def test_the_binding_header_must_be_signed() -> None:
    made = proof()
    auth = made["headers"]["Authorization"]
    made["headers"]["Authorization"] = auth.replace("x-account-connection-id;", "")
    assert "must be signed: x-account-connection-id" in refusal(made)


def test_a_stale_or_future_proof_is_refused() -> None:
    made = proof()
    assert "five minutes" in refusal(made, now=now_of(made) + timedelta(minutes=5, seconds=1))
    assert "five minutes" in refusal(made, now=now_of(made) - timedelta(minutes=5, seconds=1))
    check(made, now=now_of(made) + timedelta(minutes=4, seconds=59))


def test_a_header_given_twice_or_with_a_line_break_is_refused() -> None:
    made = proof()
    made["headers"]["host"] = made["headers"].pop("Host")
    made["headers"]["HOST"] = "sts.us-east-1.amazonaws.com"
    assert "given twice" in refusal(made)
    injected = proof()
    injected["headers"]["X-Account-Connection-Id"] = CONNECTION + "\r\nX-Amz-Target: evil"
    assert "plain ASCII line" in refusal(injected)


def test_a_signature_of_another_service_is_refused() -> None:
    made = proof()
    made["headers"]["Authorization"] = made["headers"]["Authorization"].replace("/sts/", "/iam/")
    assert "not a SigV4 signature for sts" in refusal(made)


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_only_post_is_a_proof(method: str) -> None:
    with pytest.raises(ValueError):
        AccountProof.model_validate(proof(method=method))


IDENTITY = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::111122223333:assumed-role/Admin/alice</Arn>
    <UserId>AROAEXAMPLE:alice</UserId>
    <Account>111122223333</Account>
  </GetCallerIdentityResult>
</GetCallerIdentityResponse>"""


def test_sts_answer_is_read_strictly() -> None:
    identity = parse_identity(IDENTITY)
    assert identity == CallerIdentity("111122223333", "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                                      "AROAEXAMPLE:alice")  # fmt: skip
    assert identity.principal_arn == "arn:aws:iam::111122223333:role/Admin"


@pytest.mark.parametrize(
    "answer",
    [
        IDENTITY.replace(
            "<Account>111122223333</Account>", "<Account>444455556666</Account>"
        ),  # ARN elsewhere
        IDENTITY.replace("<UserId>AROAEXAMPLE:alice</UserId>", ""),
        IDENTITY.replace("</Account>", "</Account><Extra>1</Extra>"),
        IDENTITY.replace("GetCallerIdentityResponse", "AssumeRoleResponse"),
        IDENTITY.replace("https://sts.amazonaws.com/doc/2011-06-15/", "https://evil.example/"),
        "<html>not xml",
    ],
)
def test_any_other_answer_is_refused(answer: str) -> None:
    with pytest.raises(AccountProofRefused):
        parse_identity(answer)


def test_approver_principals_match_a_role_by_account_and_name_whatever_its_path() -> None:
    allowed = ["arn:aws:iam::111122223333:role/ops/Admin", "arn:aws:iam::111122223333:user/bob"]
    assert matches("arn:aws:iam::111122223333:role/Admin", allowed)
    assert matches("arn:aws:iam::111122223333:user/bob", allowed)
    assert not matches("arn:aws:iam::444455556666:role/Admin", allowed)
    assert not matches("arn:aws:iam::111122223333:role/Administrator", allowed)
