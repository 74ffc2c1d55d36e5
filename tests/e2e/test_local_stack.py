"""What the local stack itself promises: one clear line when it cannot start, the template's
parameter rules, HEAD, and an outbox page that shows emails as text."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.process import ROOT, StackProcess
from tests.e2e.client import StackClient

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
    for email in client.outbox():
        assert f'<a href="{email["links"][0]}">' in page.text
