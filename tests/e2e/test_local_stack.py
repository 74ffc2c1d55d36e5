"""What the local stack itself promises: one clear line when it cannot start, the template's
parameter rules, HEAD, 404 for a method no route can have, an outbox page that shows emails as
text, links from the stack's own address, no link token in its logs, the emulated AWS
endpoint in its banner, KMS keys as declared, and scheduled rules that fire."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from local.process import ROOT, StackProcess
from tests.e2e.client import StackClient
from tests.e2e.conftest import DIGEST_INTERVAL_SECONDS

pytestmark = pytest.mark.e2e


def _run_local(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local"], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_taken_port_is_one_clear_line_and_exit_code_1(stack: StackProcess) -> None:
    done = _run_local(PORT=str(stack.port))
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: port {stack.port} is already in use; stop what uses it or set PORT"
    assert "Traceback" not in done.stdout + done.stderr


def test_an_approval_window_below_the_template_minimum_is_refused() -> None:
    done = _run_local(PORT="0", APPROVAL_TIMEOUT_SECONDS="5")
    assert done.returncode == 1
    assert "ApprovalTimeoutSeconds must be between 60" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_schedule_interval_that_is_not_a_positive_number_is_one_clear_line() -> None:
    # (The other refused values: tests/integration/test_local_scheduler.py.)
    done = _run_local(PORT="0", LOCAL_DIGEST_INTERVAL_SECONDS="0")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "error: LOCAL_DIGEST_INTERVAL_SECONDS must be a positive number of seconds, not '0'"
    )
    assert "Traceback" not in done.stdout + done.stderr


def test_head_and_the_routes_the_template_does_not_declare(client: StackClient) -> None:
    head = client.request("HEAD", "/verify?token=unknown")
    assert head.status == 404
    assert head.body == b""
    assert client.request("GET", "/no/such/route").json() == {"message": "Not Found"}
    assert client.request("GET", "/_local/token?sub=mallory").status == 404


def test_outbox_page_lists_emails_as_text_with_clickable_links(client: StackClient) -> None:
    page = client.request("GET", "/_local/outbox.html")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    links = [link for email in client.outbox() for link in email["links"]]
    # (A notice that a request was decided by account proof carries no link.)
    assert links
    for link in links:
        assert f'<a href="{link}">' in page.text


@pytest.mark.parametrize("path", ["/health", "/verify", "/spaces/demo/connections", "/no/such/route"])
def test_a_method_no_route_can_have_is_404_as_api_gateway_answers(client: StackClient, path: str) -> None:
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        response = client.request(method, path)
        assert response.status == 404, (method, response.status)
        assert response.json() == {"message": "Not Found"}


def _emulated_aws(stack: StackProcess) -> str:
    found = re.search(r"^  Emulated AWS   (http://127\.0\.0\.1:\d+)\s", stack.output(), re.MULTILINE)
    assert found, stack.output()[-3000:]
    return found.group(1)


def test_the_banner_names_the_emulated_aws_endpoint_to_inspect_with_the_dummy_credentials(
    stack: StackProcess, client: StackClient
) -> None:
    endpoint = _emulated_aws(stack)
    credentials = client.request("GET", "/_local/aws-credentials?account=111122223333").json()
    assert credentials["endpoint"] == endpoint
    assert f"aws --endpoint-url {endpoint} " in stack.output()
    dummy: dict[str, Any] = {"aws_access_key_id": "local-stack", "aws_secret_access_key": "local-stack"}
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1", **dummy)
    (deployed,) = cloudformation.describe_stacks(StackName="account-connections")["Stacks"]
    parameters = {item["ParameterKey"]: item["ParameterValue"] for item in deployed["Parameters"]}
    # The deploy's overrides: links start with the stack's own address; proofs go to the emulated STS
    assert parameters["PublicBaseUrl"] == stack.url
    assert parameters.get("StsEndpointUrl", f"{endpoint}/") == f"{endpoint}/"
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1", **dummy)
    assert sfn.list_state_machines()["stateMachines"]


def test_email_links_start_with_the_stacks_address_whatever_the_request_headers(
    client: StackClient,
) -> None:
    space = client.new_space({"alice": "SPACE_ADMIN"})
    marker = f"Forged host {uuid.uuid4().hex[:8]}"
    forged = {"Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    body = {"accountId": "111122223333", "displayName": marker}
    created = client.request(
        "POST", f"/spaces/{space}/connections", user="alice", json_body=body, headers=forged
    )
    assert created.status == 201, created.text
    links = client.email_about(marker)["links"]
    assert links
    assert all(link.startswith(f"{client.base_url}/") for link in links), links


def test_no_link_token_reaches_the_stacks_logs(stack: StackProcess, client: StackClient) -> None:
    output = stack.state_dir / "output.log"

    def unknown_token_views() -> int:
        return len(re.findall(r"GET /verify\S* 404 in", output.read_text(errors="replace")))

    # Given a page view with a link's token, and then one with an unknown token
    space = client.new_space({"alice": "SPACE_ADMIN"})
    marker = f"Log check {uuid.uuid4().hex[:8]}"
    assert client.create_connection("alice", space, "111122223333", displayName=marker).status == 201
    link = client.email_about(marker)["links"][0]
    assert "token=" in link
    assert client.request("GET", link).status == 200
    before = unknown_token_views()
    assert client.request("GET", "/verify?token=not-a-real-token").status == 404

    # Then, once the stack has logged them (at DEBUG, its most: the front's line after the reply),
    deadline = time.monotonic() + 10
    while unknown_token_views() == before:
        assert time.monotonic() < deadline, "the front did not log the request"
        time.sleep(0.2)
    # no log file of the stack (its output, each function's log) has a token in it
    logs = [path for path in stack.state_dir.rglob("*") if path.is_file()]
    assert output in logs and any(path.suffix == ".log" and path != output for path in logs)
    for path in logs:
        assert "token=" not in path.read_text(errors="replace"), path
    # and the front logged the page views by their path
    assert "GET /verify 200 in" in output.read_text(errors="replace")


_DUMMY: dict[str, Any] = {
    "aws_access_key_id": "local-stack",
    "aws_secret_access_key": "local-stack",
    "region_name": "us-east-1",
}


def _deployed(endpoint: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The deployed stack's parameters, outputs and physical ids (of what moto's CloudFormation made)."""
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, **_DUMMY)
    (deployed,) = cloudformation.describe_stacks(StackName="account-connections")["Stacks"]
    parameters = {item["ParameterKey"]: item["ParameterValue"] for item in deployed["Parameters"]}
    outputs = {item["OutputKey"]: item["OutputValue"] for item in deployed.get("Outputs", [])}
    resources = cloudformation.describe_stack_resources(StackName="account-connections")["StackResources"]
    physical = {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in resources
        if item.get("LogicalResourceId") and item.get("PhysicalResourceId")
    }
    return parameters, outputs, physical


def test_kms_keys_are_created_as_declared_and_the_digest_key_signs(stack: StackProcess) -> None:
    endpoint = _emulated_aws(stack)
    _, outputs, _ = _deployed(endpoint)
    kms = boto3.client("kms", endpoint_url=endpoint, **_DUMMY)

    # The digest key as the template declares it (moto's CloudFormation makes every key symmetric)
    signing = kms.describe_key(KeyId=outputs["DigestSigningKeyArn"])["KeyMetadata"]
    assert (signing["KeySpec"], signing["KeyUsage"]) == ("RSA_3072", "SIGN_VERIFY")
    assert signing["Description"] == "Account connections (account-connections): signs the audit digests"
    assert "RSASSA_PSS_SHA_256" in signing["SigningAlgorithms"]
    # signs, and the signature verifies against its public key, as docs/audit.md checks a digest
    message = bytes(range(32))
    signature = kms.sign(
        KeyId=outputs["DigestSigningKeyArn"], Message=message, MessageType="RAW",
        SigningAlgorithm="RSASSA_PSS_SHA_256",
    )["Signature"]  # fmt: skip
    public_key = serialization.load_der_public_key(kms.get_public_key(KeyId=signing["KeyId"])["PublicKey"])
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 3072
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    public_key.verify(signature, message, pss, hashes.SHA256())  # raises InvalidSignature otherwise
    policy = kms.get_key_policy(KeyId=signing["KeyId"], PolicyName="default")["Policy"]
    assert "arn:aws:iam::123456789012:root" in policy

    # The service's own key stays a symmetric encryption key, rotated, behind its alias
    encryption = kms.describe_key(KeyId="alias/account-connections")["KeyMetadata"]
    assert encryption["Arn"] == outputs["EncryptionKeyArn"]
    assert (encryption["KeySpec"], encryption["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert kms.get_key_rotation_status(KeyId=encryption["KeyId"])["KeyRotationEnabled"] is True
    sealed = kms.encrypt(KeyId=encryption["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"secret"


def test_the_digest_job_is_deployed_with_the_local_settle_time(stack: StackProcess) -> None:
    endpoint = _emulated_aws(stack)
    parameters, _, physical = _deployed(endpoint)
    assert parameters["DigestSettleSeconds"] == "5"
    lambda_ = boto3.client("lambda", endpoint_url=endpoint, **_DUMMY)
    function = lambda_.get_function_configuration(FunctionName=physical["DigestFunction"])
    # (moto keeps a Number parameter a number; the local runtime passes it as Lambda does, a string)
    assert str(function["Environment"]["Variables"]["DIGEST_SETTLE_SECONDS"]) == "5"


def test_the_digest_schedule_fires_at_the_local_interval(stack: StackProcess) -> None:
    endpoint = _emulated_aws(stack)
    parameters, _, physical = _deployed(endpoint)
    events = boto3.client("events", endpoint_url=endpoint, **_DUMMY)
    lambda_ = boto3.client("lambda", endpoint_url=endpoint, **_DUMMY)
    # The rule as deployed, with the template's rate and the digest job as its target
    rule = events.describe_rule(Name=physical["DigestFunctionSchedule"])
    assert rule["ScheduleExpression"] == f"rate({parameters.get('DigestIntervalMinutes', '60')} minutes)"
    assert rule["State"] == "ENABLED"
    (target,) = events.list_targets_by_rule(Rule=physical["DigestFunctionSchedule"])["Targets"]
    function = lambda_.get_function_configuration(FunctionName=physical["DigestFunction"])
    assert target["Arn"] == function["FunctionArn"]

    # The stack said at start-up that it fires it every LOCAL_DIGEST_INTERVAL_SECONDS
    expression = rule["ScheduleExpression"]
    line = (
        f"DigestFunctionSchedule: DigestFunction every {DIGEST_INTERVAL_SECONDS} s "
        f"(the template's {expression}, overridden)"
    )
    assert f"  Schedule {line}\n" in stack.output()
    assert f"  Schedule       {line}\n" in stack.output()  # and in its banner

    # and does: the digest job is invoked with scheduled events (whatever the job then does)
    def invoked() -> int:
        return stack.output().count("rule DigestFunctionSchedule: invoking DigestFunction (event ")

    deadline = time.monotonic() + 3 * DIGEST_INTERVAL_SECONDS
    while invoked() < 1:
        assert time.monotonic() < deadline, stack.output()[-3000:]
        time.sleep(0.2)
