"""acctconn prove: the proof's shape, a real SigV4 signature over it, the binding header signed,
and where credentials and the region come from."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from acctconn.main import cli
from tests.cli.conftest import ACCESS_KEY, CONNECTION_ID, OTHER_CONNECTION_ID, SECRET_KEY, SESSION_TOKEN
from tests.cli.sigv4 import authorization, botocore_signature, documented_signature, header

BODY = b"Action=GetCallerIdentity&Version=2011-06-15"


def prove(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["prove", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    proof: dict[str, Any] = json.loads(result.output)
    return proof


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


# (a) shape, body and url


def test_the_proof_has_the_shape_spec_gives() -> None:
    proof = prove(CONNECTION_ID)
    assert list(proof) == ["method", "url", "body", "headers"]
    assert proof["method"] == "POST"
    assert proof["url"] == "https://sts.us-east-1.amazonaws.com/"
    assert base64.b64decode(proof["body"], validate=True) == BODY
    assert all(isinstance(v, str) for v in proof["headers"].values())
    assert header(proof, "Host") == "sts.us-east-1.amazonaws.com"
    assert header(proof, "Content-Type") == "application/x-www-form-urlencoded; charset=utf-8"
    assert header(proof, "X-Account-Connection-Id") == CONNECTION_ID
    assert header(proof, "X-Amz-Security-Token") == SESSION_TOKEN


def test_the_url_and_the_scope_follow_the_region() -> None:
    proof = prove(CONNECTION_ID, "--region", "eu-west-1")
    assert proof["url"] == "https://sts.eu-west-1.amazonaws.com/"
    assert header(proof, "Host") == "sts.eu-west-1.amazonaws.com"
    auth = authorization(proof)
    assert (auth.access_key, auth.region, auth.service) == (ACCESS_KEY, "eu-west-1", "sts")


def test_endpoint_url_is_the_url_and_the_host_signed_for_the_region() -> None:
    proof = prove(CONNECTION_ID, "--endpoint-url", "http://127.0.0.1:5000", "--region", "eu-west-1")
    assert proof["url"] == "http://127.0.0.1:5000/"
    assert header(proof, "Host") == "127.0.0.1:5000"
    assert authorization(proof).region == "eu-west-1"
    assert documented_signature(proof, SECRET_KEY) == authorization(proof).signature


def test_the_signature_is_dated_now_in_its_scope() -> None:
    proof = prove(CONNECTION_ID)
    signed_at = datetime.strptime(header(proof, "X-Amz-Date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    assert authorization(proof).date == header(proof, "X-Amz-Date")[:8]


def test_json_flag_changes_nothing() -> None:
    result = run("--json", "prove", CONNECTION_ID)
    assert result.exit_code == 0
    assert set(json.loads(result.output)) == {"method", "url", "body", "headers"}


# (b) a real SigV4 signature, and what breaks it


@pytest.mark.parametrize("args", [(), ("--region", "ap-southeast-2")])
def test_the_signature_is_sigv4_by_the_documented_algorithm_and_by_botocore(args: tuple[str, ...]) -> None:
    proof = prove(CONNECTION_ID, *args)
    signature = authorization(proof).signature
    assert documented_signature(proof, SECRET_KEY) == signature
    assert botocore_signature(proof, SECRET_KEY, SESSION_TOKEN) == signature


def test_another_connection_id_breaks_the_signature() -> None:
    proof = prove(CONNECTION_ID)
    signature = authorization(proof).signature
    proof["headers"]["X-Account-Connection-Id"] = OTHER_CONNECTION_ID
    assert documented_signature(proof, SECRET_KEY) != signature
    assert botocore_signature(proof, SECRET_KEY, SESSION_TOKEN) != signature


def test_another_body_breaks_the_signature() -> None:
    proof = prove(CONNECTION_ID)
    signature = authorization(proof).signature
    proof["body"] = base64.b64encode(b"Action=GetCallerIdentity&Version=2011-06-16").decode()
    assert documented_signature(proof, SECRET_KEY) != signature
    assert botocore_signature(proof, SECRET_KEY, SESSION_TOKEN) != signature


def test_another_secret_breaks_the_signature() -> None:
    proof = prove(CONNECTION_ID)
    signature = authorization(proof).signature
    assert documented_signature(proof, SECRET_KEY + "x") != signature
    assert botocore_signature(proof, SECRET_KEY + "x", SESSION_TOKEN) != signature


def test_another_session_token_breaks_the_signature() -> None:
    proof = prove(CONNECTION_ID)
    signature = authorization(proof).signature
    proof["headers"]["X-Amz-Security-Token"] = "someone-elses-token"
    assert documented_signature(proof, SECRET_KEY) != signature


# (c) what is signed


def test_the_binding_header_and_the_rest_are_signed() -> None:
    proof = prove(CONNECTION_ID)
    signed = authorization(proof).signed_headers
    assert "x-account-connection-id" in signed
    assert signed == ["content-type", "host", "x-account-connection-id", "x-amz-date", "x-amz-security-token"]
    # Every header the proof carries is signed: the service keeps only the signed ones.
    assert sorted(name.lower() for name in proof["headers"] if name != "Authorization") == signed


def test_long_term_credentials_sign_no_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    proof = prove(CONNECTION_ID)
    assert authorization(proof).signed_headers == [
        "content-type",
        "host",
        "x-account-connection-id",
        "x-amz-date",
    ]
    assert "X-Amz-Security-Token" not in proof["headers"]
    assert botocore_signature(proof, SECRET_KEY, None) == authorization(proof).signature


# where the credentials and the region come from


@pytest.fixture
def profile_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile approver]\n"
        "aws_access_key_id = AKIDOFTHEPROFILE\n"
        "aws_secret_access_key = secret-of-the-profile\n"
        "region = eu-west-2\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")


@pytest.mark.usefixtures("profile_config")
def test_profile_option_signs_with_the_profile_in_its_region() -> None:
    proof = prove(CONNECTION_ID, "--profile", "approver")
    auth = authorization(proof)
    assert (auth.access_key, auth.region) == ("AKIDOFTHEPROFILE", "eu-west-2")
    assert proof["url"] == "https://sts.eu-west-2.amazonaws.com/"
    assert "X-Amz-Security-Token" not in proof["headers"]
    assert documented_signature(proof, "secret-of-the-profile") == auth.signature


@pytest.mark.usefixtures("profile_config")
def test_aws_profile_variable_selects_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in the AWS CLI, keys in the environment come before AWS_PROFILE (not before --profile).
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_PROFILE", "approver")
    assert authorization(prove(CONNECTION_ID)).access_key == "AKIDOFTHEPROFILE"


def test_region_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert authorization(prove(CONNECTION_ID)).region == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert authorization(prove(CONNECTION_ID)).region == "eu-central-1"
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert authorization(prove(CONNECTION_ID)).region == "eu-north-1"
    assert authorization(prove(CONNECTION_ID, "--region", "sa-east-1")).region == "sa-east-1"


# refusals


@pytest.mark.parametrize(
    "connection_id",
    [
        "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "0f8fad5bd9cb469fa16570867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950",
        "0f8fad5b-d9cb-469f-a165-70867728950e0",
        "../0f8fad5b-d9cb-469f-a165-7086772895",
        "g f8fad5b-d9cb-469f-a165-70867728950e",
    ],
)
def test_a_bad_connection_id_is_a_usage_error(connection_id: str) -> None:
    result = run("prove", connection_id)
    assert result.exit_code == 2
    assert "is not a connection id" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--region", "Not a region"),
        ("--endpoint-url", "ftp://127.0.0.1:5000"),
        ("--endpoint-url", "http://user:pw@127.0.0.1:5000"),
        ("--endpoint-url", "http://127.0.0.1:5000/?x=1"),
        ("--endpoint-url", "127.0.0.1:5000"),
    ],
)
def test_a_bad_region_or_endpoint_is_a_usage_error(args: tuple[str, ...]) -> None:
    result = run("prove", CONNECTION_ID, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_no_credentials_is_an_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    result = run("prove", CONNECTION_ID)
    assert result.exit_code == 4
    assert result.output.startswith("Error: no AWS credentials found")


def test_an_sso_profile_without_a_session_says_to_sign_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile sso-admin]\n"
        "sso_session = corp\n"
        "sso_account_id = 111122223333\n"
        "sso_role_name = AdministratorAccess\n"
        "[sso-session corp]\n"
        "sso_start_url = https://corp.awsapps.com/start\n"
        "sso_region = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(tmp_path))  # no SSO token cache
    result = run("prove", CONNECTION_ID, "--profile", "sso-admin")
    assert result.exit_code == 4
    assert result.output.startswith("Error: cannot load AWS credentials: ")
    assert "aws sso login --profile sso-admin" in result.output


def test_an_unknown_profile_is_an_authentication_error() -> None:
    result = run("prove", CONNECTION_ID, "--profile", "nobody")
    assert result.exit_code == 4
    assert "nobody" in result.output
