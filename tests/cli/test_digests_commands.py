"""acctconn audit digests and audit public-key against a fake API: every page followed, one JSON
array written (or the PEM as sent), and the exit codes of refusals."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.cli.fake_api import FakeApi, problem

PEM = b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"
KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/abc"


def page(items: list[dict[str, object]], token: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"items": items, **({"nextToken": token} if token else {})})


def test_every_page_of_digests_is_written_as_one_array(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/digests", page([{"to": "t1"}, {"to": "t2"}], "n1"), page([{"to": "t3"}]))
    target = tmp_path / "digests.json"
    result = api.run("audit", "digests", "--from", "2026-12-01", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert json.loads(target.read_text()) == [{"to": "t1"}, {"to": "t2"}, {"to": "t3"}]
    assert result.stderr.strip() == f"wrote 3 digests, up to t3 to {target}"
    assert api.requests[0].url.params["from"] == "2026-12-01"
    assert api.requests[1].url.params["nextToken"] == "n1"


def test_digests_to_stdout(api: FakeApi) -> None:
    api.on("GET", "/audit/digests", page([]))
    result = api.run("audit", "digests", "-o", "-")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_refusals_keep_their_exit_codes_and_write_nothing(api: FakeApi, tmp_path: Path) -> None:
    target = tmp_path / "digests.json"
    api.on("GET", "/audit/digests", problem(403, "Forbidden", "not an auditor"))
    assert api.run("audit", "digests", "-o", str(target)).exit_code == 1
    api.on("GET", "/audit/digests", problem(401, "Not authenticated", "no token"))
    assert api.run("audit", "digests", "-o", str(target)).exit_code == 4
    assert not target.exists()


def test_the_public_key_is_written_as_sent_and_its_id_named(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/public-key", httpx.Response(200, content=PEM, headers={
        "content-type": "application/x-pem-file", "X-Key-Id": KEY_ID}))  # fmt: skip
    target = tmp_path / "key.pem"
    result = api.run("audit", "public-key", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == PEM and KEY_ID in result.stderr
    assert api.last.headers["accept"].startswith("application/x-pem-file")


def test_an_answer_that_is_not_a_key_is_an_api_error(api: FakeApi, tmp_path: Path) -> None:
    api.on(
        "GET",
        "/audit/public-key",
        httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"}),
    )
    target = tmp_path / "key.pem"
    result = api.run("audit", "public-key", "-o", str(target))
    assert result.exit_code == 3 and "not a PEM public key" in result.stderr and not target.exists()
