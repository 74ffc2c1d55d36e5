"""The administrator's links and pages: what they show, what they refuse, and what never leaks."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from typing import Any

import pytest

from account_connections.api.pages import SECURITY_HEADERS
from account_connections.domain.statuses import ConnectionStatus
from account_connections.domain.tokens import hash_token
from tests.proofs import ADMIN_SESSION, FakeSts
from tests.support import load_event
from tests.workflow.conftest import ADMIN_EMAIL, OTHER_ACCOUNT, Stack

MARKUP = '<script>alert("x")</script><b>Prod</b>'


def _assert_page_headers(response: dict[str, Any]) -> None:
    headers = response["headers"]
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    policy = headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy


def test_the_page_shows_what_is_asked_with_the_token_and_a_csrf_token(stack: Stack) -> None:
    connection_id, _ = stack.request()
    email = stack.wait_for_email()
    page = stack.page(email.token)
    assert page["statusCode"] == 200
    _assert_page_headers(page)
    body = page["body"]
    for shown in ("demo", "111122223333", "Production", "Deploy target for the web app", "alice",
                  "arn:aws:iam::111122223333:role/BuildRole", "Verify space", "Reject",
                  "Authorize paid tiers"):  # fmt: skip
        assert shown in body
    assert f'name="token" value="{email.token}"' in body
    assert 'name="csrf" value="' in body
    assert stack.connections.get(connection_id).expiresAt in body


def test_the_email_says_what_is_asked_and_reaches_only_that_accounts_administrator(stack: Stack) -> None:
    stack.request()
    email = stack.wait_for_email()
    assert email.subject == "Approve connecting AWS account 111122223333 to space demo"
    for shown in ("Space:         demo", "Display name:\n> Production\n", "Requested by:\n> alice\n",
                  "Roles to attach once verified:\n> arn:aws:iam::111122223333:role/BuildRole\n",
                  "Link expires:"):  # fmt: skip
        assert shown in email.body
    other = stack.sqs.receive_message(QueueUrl=stack.queues["other-admin"]).get("Messages", [])
    assert other == [], f"the administrator of {OTHER_ACCOUNT} got another account's email"


def test_paste_token_page_and_unknown_tokens(stack: Stack) -> None:
    paste = stack.page(None)
    assert paste["statusCode"] == 200
    _assert_page_headers(paste)
    assert 'name="token"' in paste["body"] and 'method="get"' in paste["body"]
    unknown = stack.page("not-a-token-we-issued")
    assert unknown["statusCode"] == 404
    _assert_page_headers(unknown)
    assert "not known" in unknown["body"]


def test_the_connection_token_opens_the_same_page(stack: Stack, sts: FakeSts) -> None:
    connection_id, connection_token = stack.request()
    stack.wait_for_email()
    assert stack.page(connection_token)["statusCode"] == 200
    proof = json.dumps(sts.proof(connection_id, ADMIN_SESSION))
    answer = stack.decide_form(connection_token, {"decision": "approve", "accountProof": proof})
    assert answer["statusCode"] == 200, answer["body"]
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"


def test_get_and_head_change_nothing(stack: Stack) -> None:
    stack.request()
    token = stack.wait_for_email().token
    before = stack.dump()
    for _ in range(3):
        assert stack.page(token)["statusCode"] == 200
        head = stack.page(token, head=True)
        assert head["statusCode"] == 200 and head["body"] == ""
        _assert_page_headers(head)
        assert stack.page(token + "x")["statusCode"] == 404
    assert stack.dump() == before


@pytest.mark.parametrize("head", [False, True])
def test_a_used_link_is_gone_and_a_second_decision_conflicts(stack: Stack, head: bool) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    assert stack.approve(token)["statusCode"] == 200
    stack.wait_for_end(connection_id)
    page = stack.page(token, head=head)
    assert page["statusCode"] == 410
    assert head or "already used" in page["body"]
    again = stack.decide_json(token, "reject", reason="changed my mind")
    assert again["statusCode"] == 409
    assert again["headers"]["Content-Type"] == "application/problem+json"
    assert stack.connections.get(connection_id).status == ConnectionStatus.VERIFIED


def test_a_tampered_or_forged_form_is_refused_and_changes_nothing(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    before = stack.dump()
    forged = stack.decide_form(token, {"decision": "approve"}, csrf="0" * 64)
    assert forged["statusCode"] == 409
    assert "open the link again" in forged["body"]
    _assert_page_headers(forged)
    missing = stack.verify_http(_form_event(f"token={token}&decision=approve"))
    assert missing["statusCode"] == 400
    tampered = stack.decide_json(token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "approve")
    assert tampered["statusCode"] == 404
    unknown_field = stack.verify_http(_form_event(f"token={token}&decision=approve&csrf=x&admin=1"))
    assert unknown_field["statusCode"] == 400 and "admin" in unknown_field["body"]
    assert stack.dump() == before
    assert stack.connections.get(connection_id).status == ConnectionStatus.PENDING_APPROVAL


def _form_event(body: str) -> dict[str, Any]:
    return load_event("http_verify_decide_form", body=body)


def test_a_rejection_needs_a_reason(stack: Stack) -> None:
    stack.request()
    token = stack.wait_for_email().token
    answer = stack.decide_json(token, "reject")
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["errors"] == [{"field": "reason", "message": "is required to reject"}]


def test_a_json_decision_answers_json(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    answer = stack.decide_json(token, "approve", authorizePaidTiers=True)
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"] == "application/json"
    outcome = json.loads(answer["body"])
    assert outcome["status"] == "APPROVED" and outcome["decidedBy"] == ADMIN_EMAIL
    assert outcome["paidTiersAuthorized"] is True
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    assert stack.decide_json(token, "bogus")["statusCode"] == 400


def test_two_concurrent_decisions_make_exactly_one(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    stack.page(token)  # the handler is loaded before the race, as a warm Lambda would be
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(4)

    def decide(decision: str) -> None:
        start.wait()
        extra = {"reason": "no"} if decision == "reject" else {}
        answers.append(stack.decide_json(token, decision, **extra))

    threads = [threading.Thread(target=decide, args=(d,)) for d in ("approve", "reject", "approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer["statusCode"] for answer in answers)
    assert codes == [200, 409, 409, 409], [answer["body"] for answer in answers]
    stack.wait_for_end(connection_id)
    _, _, history = stack.connections.detail(connection_id)
    decisions = [e for e in history if e.fromStatus == ConnectionStatus.PENDING_APPROVAL]
    assert len(decisions) == 1


def test_an_approval_through_a_closed_task_reaches_the_task_the_workflow_waits_with(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    # The task the link's copy names has closed (a timer fired and the workflow waits anew with
    # another task token): Step Functions refuses it. moto cannot close a waiting task, so the
    # copy on the link's own item (what the decision reads) is made stale.
    stack.ddb.update_item(
        TableName="connections-workflow-test",
        Key={"pk": {"S": f"TOKEN#{hash_token(token)}"}, "sk": {"S": "TOKEN"}},
        UpdateExpression="SET taskToken = :closed",
        ExpressionAttributeValues={":closed": {"S": "a-task-that-has-closed"}},
    )
    # Then the window is open, so the approval stands and goes to the task the request names now
    assert stack.approve(token)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
    assert stack.connections.get(connection_id).status == ConnectionStatus.VERIFIED


def test_markup_in_a_display_name_is_escaped_in_the_page_and_quoted_in_the_email(stack: Stack) -> None:
    stack.request(display_name=MARKUP)
    email = stack.wait_for_email()
    # The email is plain text: the name as written, on a quoted line under the service's label
    assert f"Display name:\n> {MARKUP}\n" in email.body
    assert html.escape(MARKUP) not in email.body
    page = stack.page(email.token)["body"]
    assert MARKUP not in page and "<script>" not in page
    assert html.escape(MARKUP) in page


def test_the_task_token_appears_in_no_email_page_url_or_log_line(stack: Stack) -> None:
    connection_id, connection_token = stack.request()
    email = stack.wait_for_email()
    task_token = str(stack.item(connection_id)["taskToken"])
    assert task_token
    pages = [stack.page(email.token), stack.page(email.token, head=True), stack.page(connection_token)]
    answer = stack.approve(email.token)
    stack.wait_for_end(connection_id)
    assert stack.connections.get(connection_id).status == ConnectionStatus.VERIFIED
    seen = [email.subject, email.body, email.link, answer["body"], json.dumps(answer["headers"]),
            *(page["body"] for page in pages), *(json.dumps(page["headers"]) for page in pages),
            *(json.dumps(notice) for notice in stack.drain_notices())]  # fmt: skip
    for text in seen:
        assert task_token not in text
    # Log lines carry neither the task token nor a link's token (both are capabilities).
    assert len(stack.logs) >= 8, "the handlers' log lines were not captured"
    for line in stack.logs:
        assert task_token not in line and email.token not in line and connection_token not in line
    # The correlation id of the creating request tags the steps' log lines.
    step_messages = {"approval links written", "connection verified", "roles checked", "outcome recorded"}
    step_lines = [entry for entry in map(json.loads, stack.logs) if entry["message"] in step_messages]
    assert {entry["message"] for entry in step_lines} == step_messages
    assert {entry["correlation_id"] for entry in step_lines} == {"corr-Producti"}


def test_page_headers_are_the_documented_set() -> None:
    assert set(SECURITY_HEADERS) >= {"Cache-Control", "Referrer-Policy", "Content-Security-Policy",
                                     "X-Content-Type-Options"}  # fmt: skip


def test_a_base64_encoded_form_is_read_and_odd_bodies_are_refused_without_a_5xx(stack: Stack) -> None:
    connection_id, _ = stack.request()
    token = stack.wait_for_email().token
    before = stack.dump()
    odd = [
        load_event("http_verify_decide_form", body="%%% not base64", isBase64Encoded=True),
        load_event(
            "http_verify_decide_form", body=base64.b64encode(b"\xff\xfe").decode(), isBase64Encoded=True
        ),
        load_event("http_verify_decide_form", body="token=" + "a" * 70_000),
        load_event("http_verify_decide_json", body='{"token": 1e999999, "decision": "approve"}'),
        load_event(
            "http_verify_decide_json", body='{"token": "' + token + '", "decision": "approve", "x": 1}'
        ),
        load_event("http_verify_decide_json", body="[]"),
        load_event("http_verify_decide_json", body="{"),
    ]
    codes = [stack.verify_http(event)["statusCode"] for event in odd]
    assert codes == [400, 400, 413, 400, 400, 400, 400]
    assert stack.dump() == before
    csrf = re.search(r'name="csrf" value="([^"]+)"', stack.page(token)["body"])
    assert csrf
    form = f"token={token}&csrf={csrf.group(1)}&decision=approve"
    encoded = load_event(
        "http_verify_decide_form", body=base64.b64encode(form.encode()).decode(), isBase64Encoded=True
    )
    assert stack.verify_http(encoded)["statusCode"] == 200
    assert stack.wait_for_end(connection_id)["status"] == "SUCCEEDED"
