"""Account proofs against the local stack: the seeded role ``Admin``'s credentials from
``/_local/aws-credentials``, a proof made by ``acctconn prove`` with them, and the emulated STS
that answers it as AWS's does: the caller for a proof signed as it was made, 403 for anything
else (SPEC "Decisions: who may decide, and the proof they give")."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.cli.sigv4 import documented_signature, header
from tests.e2e.client import StackClient

pytestmark = pytest.mark.e2e

ACCOUNTS = ["111122223333", "444455556666"]
ACCTCONN = Path(sys.executable).with_name("acctconn")
STS_NS = {"sts": "https://sts.amazonaws.com/doc/2011-06-15/"}


def credentials_of(client: StackClient, account: str) -> dict[str, str]:
    response = client.request("GET", f"/_local/aws-credentials?account={account}")
    assert response.status == 200, response.text
    return dict(response.json())


def prove(credentials: dict[str, str], connection_id: str, **overrides: str) -> dict[str, Any]:
    """``acctconn prove`` with these credentials in the environment and nothing else of the
    machine's AWS configuration, for the emulated AWS endpoint."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(overrides)
    done = subprocess.run(
        [str(ACCTCONN), "prove", connection_id, "--endpoint-url", credentials["endpoint"]],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def send(proof: dict[str, Any]) -> httpx.Response:
    """The proof POSTed as it is: its method, URL, headers (Host included) and decoded body."""
    return httpx.request(
        proof["method"],
        proof["url"],
        headers=proof["headers"],
        content=base64.b64decode(proof["body"]),
        timeout=30,
    )


def caller(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    result = ET.fromstring(response.text).find("sts:GetCallerIdentityResult", STS_NS)
    assert result is not None, response.text
    return {child.tag.split("}")[1]: child.text or "" for child in result}


def error(response: httpx.Response) -> tuple[int, str, str]:
    """(status, Code, Message) of an STS ``<ErrorResponse>``."""
    root = ET.fromstring(response.text)
    assert root.tag == f"{{{STS_NS['sts']}}}ErrorResponse", response.text
    return (
        response.status_code,
        root.findtext("sts:Error/sts:Code", namespaces=STS_NS) or "",
        root.findtext("sts:Error/sts:Message", namespaces=STS_NS) or "",
    )


def with_header(proof: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    changed = copy.deepcopy(proof)
    (key,) = [key for key in changed["headers"] if key.lower() == name.lower()]
    changed["headers"][key] = value
    return changed


def resigned(proof: dict[str, Any], secret_key: str, signed_at: datetime | None = None) -> dict[str, Any]:
    """The proof signed again (by hand, with AWS's documented algorithm) with ``secret_key``,
    at ``signed_at`` if given (its X-Amz-Date and the date of its credential scope)."""
    changed = copy.deepcopy(proof)
    authorization = header(changed, "Authorization")
    if signed_at is not None:
        amz_date = signed_at.strftime("%Y%m%dT%H%M%SZ")
        changed = with_header(changed, "X-Amz-Date", amz_date)
        authorization = re.sub(r"(Credential=[^/]+/)\d{8}/", rf"\g<1>{amz_date[:8]}/", authorization)
        changed = with_header(changed, "Authorization", authorization)
    signature = documented_signature(changed, secret_key)
    return with_header(
        changed, "Authorization", re.sub(r"Signature=\w+", f"Signature={signature}", authorization)
    )


@pytest.fixture(scope="module")
def admin_credentials(client: StackClient) -> dict[str, str]:
    return credentials_of(client, ACCOUNTS[0])


@pytest.fixture(scope="module")
def proof(admin_credentials: dict[str, str]) -> dict[str, Any]:
    return prove(admin_credentials, str(uuid.uuid4()))


# ---- /_local/aws-credentials -----------------------------------------------------------------


@pytest.mark.parametrize("account", ACCOUNTS)
def test_aws_credentials_are_the_admin_role_of_each_seeded_account(client: StackClient, account: str) -> None:
    credentials = credentials_of(client, account)
    assert set(credentials) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "endpoint"}
    assert credentials["AccessKeyId"].startswith("ASIA")
    sts = boto3.client(
        "sts",
        endpoint_url=credentials["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    identity = sts.get_caller_identity()
    assert identity["Account"] == account
    assert identity["Arn"].startswith(f"arn:aws:sts::{account}:assumed-role/Admin/")


@pytest.mark.parametrize(
    ("query", "status"),
    [("account=999988887777", 404), ("", 400), ("account=", 400), ("account=1111222233", 400),
     ("account=11112222333x", 400), ("account=%EF%BC%9111122223333", 400)],  # a full-width 1
)  # fmt: skip
def test_aws_credentials_only_for_a_seeded_account(client: StackClient, query: str, status: int) -> None:
    response = client.request("GET", f"/_local/aws-credentials?{query}")
    assert response.status == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status


# ---- the proof, answered by the emulated STS ------------------------------------------------------


def test_a_proof_sent_as_it_is_is_answered_with_its_account(proof: dict[str, Any]) -> None:
    # The proof is signed for the host the approver named, the emulated AWS's own address
    assert header(proof, "Host") == httpx.URL(proof["url"]).netloc.decode()
    identity = caller(send(proof))
    assert identity["Account"] == ACCOUNTS[0]
    assert identity["Arn"].startswith(f"arn:aws:sts::{ACCOUNTS[0]}:assumed-role/Admin/")
    assert identity["UserId"]


def test_each_seeded_account_proves_itself(client: StackClient) -> None:
    for account in ACCOUNTS:
        assert caller(send(prove(credentials_of(client, account), str(uuid.uuid4()))))["Account"] == account


def _one_character_changed(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def _tampered(proof: dict[str, Any], admin_credentials: dict[str, str], how: str) -> dict[str, Any]:
    if how == "signature":
        return with_header(proof, "Authorization", _one_character_changed(header(proof, "Authorization")))
    if how == "connection id":
        return with_header(proof, "X-Account-Connection-Id", str(uuid.uuid4()))
    if how == "body":
        changed = copy.deepcopy(proof)
        changed["body"] = base64.b64encode(b"Action=GetCallerIdentity&Version=2011-06-16").decode()
        return changed
    if how == "secret key":
        return resigned(proof, _one_character_changed(admin_credentials["SecretAccessKey"]))
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["signature", "connection id", "body", "secret key"])
def test_a_proof_altered_or_signed_with_another_secret_is_refused(
    proof: dict[str, Any], admin_credentials: dict[str, str], how: str
) -> None:
    status, code, message = error(send(_tampered(proof, admin_credentials, how)))
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert message.startswith("The request signature we calculated does not match")


def test_a_proof_signed_again_with_the_issued_secret_is_answered(
    proof: dict[str, Any], admin_credentials: dict[str, str]
) -> None:
    """The by-hand signing the refusals use is SigV4 as STS computes it: with the right secret,
    ten minutes ago (within STS's 15), it passes."""
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)
    again = resigned(proof, admin_credentials["SecretAccessKey"], ten_minutes_ago)
    assert caller(send(again))["Account"] == ACCOUNTS[0]


@pytest.mark.parametrize(("minutes", "says"), [(-20, "Signature expired"), (20, "Signature not yet current")])
def test_a_proof_signed_more_than_15_minutes_off_is_refused(
    proof: dict[str, Any], admin_credentials: dict[str, str], minutes: int, says: str
) -> None:
    skewed = resigned(
        proof, admin_credentials["SecretAccessKey"], datetime.now(UTC) + timedelta(minutes=minutes)
    )
    status, code, message = error(send(skewed))
    assert (status, code) == (403, "SignatureDoesNotMatch")
    assert message.startswith(says), message


@pytest.mark.parametrize("prefix", ["ASIA", "AKIA"])
def test_an_access_key_the_emulated_sts_never_issued_is_refused(
    admin_credentials: dict[str, str], prefix: str
) -> None:
    made_up = {**admin_credentials, "AccessKeyId": prefix + uuid.uuid4().hex[:16].upper()}
    status, code, _ = error(send(prove(made_up, str(uuid.uuid4()))))
    assert (status, code) == (403, "InvalidClientTokenId")


def test_the_issued_key_with_another_session_token_is_refused(admin_credentials: dict[str, str]) -> None:
    other_token = {**admin_credentials, "SessionToken": admin_credentials["SessionToken"][:-4] + "AAAA"}
    status, code, _ = error(send(prove(other_token, str(uuid.uuid4()))))
    assert (status, code) == (403, "InvalidClientTokenId")


def test_the_stacks_dummy_credentials_still_reach_the_emulated_aws(admin_credentials: dict[str, str]) -> None:
    """What the functions sign with is not shaped like an AWS key: not checked, as before."""
    dummy: dict[str, Any] = {"aws_access_key_id": "local-stack", "aws_secret_access_key": "local-stack"}
    endpoint = admin_credentials["endpoint"]
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", **dummy)
    assert sts.get_caller_identity()["Account"] == "123456789012"
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", **dummy)
    assert any(name.startswith("account-connections-") for name in dynamodb.list_tables()["TableNames"])
