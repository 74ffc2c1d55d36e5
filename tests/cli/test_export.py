"""acctconn audit export against a fake API: the pages followed through X-Next-Token, the JSON
Lines written as sent into a file renamed into place at the end, nothing left by a failure,
and the progress on stderr only."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from acctconn.commands import export as export_module
from tests.cli.fake_api import FakeApi, problem
from tests.cli.test_verify import valid

NDJSON = {"content-type": "application/x-ndjson"}


def line(event_id: str, chain: str | None, seq: int | None = None) -> bytes:
    event: dict[str, object] = {"eventId": event_id, "type": "LINK_SENT", "actor": "alice"}
    if chain is not None:
        event.update(chain=chain, seq=seq, hash="0" * 64)
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


PAGES = {
    None: (line("c1", "CONNECTION#a", 1) + line("c2", "CONNECTION#a", 2), "t1"),
    "t1": (line("r1", "REGISTRY#SPACE#demo", 1), "t2"),
    "t2": (line("old", None) + line("c3", "CONNECTION#a", 3), None),
}
EVERYTHING = b"".join(body for body, _ in PAGES.values())


def paged(failing: str = "") -> Callable[[httpx.Request], httpx.Response]:
    """The three pages, in turn; the one of token ``failing`` a 503."""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextToken")
        if failing and token == failing:
            return problem(503, "Service Unavailable", "try again later")
        body, next_token = PAGES[token]
        headers = {**NDJSON, **({"X-Next-Token": next_token} if next_token else {})}
        return httpx.Response(200, content=body, headers=headers)

    return answer


def test_every_page_is_written_as_sent(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", paged())
    target = tmp_path / "events.jsonl"
    result = api.run("audit", "export", "--from", "2026-12-01", "--to", "2026-12-31", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes() == EVERYTHING
    assert [request.url.params.get("nextToken") for request in api.requests] == [None, "t1", "t2"]
    for request in api.requests:
        assert request.url.params["from"] == "2026-12-01" and request.url.params["to"] == "2026-12-31"
        assert request.headers["Accept"].startswith("application/x-ndjson")
        assert request.headers["Authorization"] == "Bearer jwt-of-alice"
    assert result.stdout == ""
    assert result.stderr == f"exported 5 events of 2 chains to {target}\n"
    assert sorted(os.listdir(tmp_path)) == ["events.jsonl"]


def test_the_file_is_a_temporary_one_renamed_at_the_end(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.on("GET", "/audit/export", paged())
    renames: list[tuple[Path, Path, bytes]] = []
    real_replace = os.replace

    def replace(source: str, target: Path) -> None:
        assert not Path(target).exists()  # nothing at the target until the end
        renames.append((Path(source), Path(target), Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "events.jsonl"
    result = api.run("audit", "export", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    [(source, renamed, content)] = renames
    assert source.parent == tmp_path and source.name.startswith(".events.jsonl.") and source != target
    assert renamed == target and content == EVERYTHING


def test_a_failure_mid_way_leaves_no_file(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", paged(failing="t2"))
    target = tmp_path / "events.jsonl"
    result = api.run("audit", "export", "-o", str(target))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: Service Unavailable (503): try again later")
    assert os.listdir(tmp_path) == []


def test_a_failure_mid_way_keeps_the_previous_file(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", paged(failing="t1"))
    target = tmp_path / "events.jsonl"
    target.write_bytes(b"the last export\n")
    assert api.run("audit", "export", "-o", str(target)).exit_code == 3
    assert target.read_bytes() == b"the last export\n"
    assert os.listdir(tmp_path) == ["events.jsonl"]


def test_to_stdout_only_the_json_lines_and_the_progress_on_stderr(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.on("GET", "/audit/export", paged())
    progress = io.StringIO()
    # stderr a terminal: the progress is drawn, there.
    monkeypatch.setattr(
        export_module, "progress_console", lambda: Console(file=progress, force_terminal=True, width=100)
    )
    result = api.run("audit", "export", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == EVERYTHING
    assert "events" in progress.getvalue() and "pages" in progress.getvalue()
    assert result.stderr == "exported 5 events of 2 chains to stdout\n"


def test_no_progress_when_stderr_is_not_a_terminal(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", paged())
    result = api.run("audit", "export", "-o", "-")
    assert result.exit_code == 0
    assert result.stdout_bytes == EVERYTHING
    assert result.stderr == "exported 5 events of 2 chains to stdout\n"


def test_to_stdout_a_failure_writes_nothing(api: FakeApi) -> None:
    api.on("GET", "/audit/export", paged(failing="t2"))
    result = api.run("audit", "export", "-o", "-")
    assert result.exit_code == 3
    assert result.stdout_bytes == b""


def test_a_last_line_without_newline_gets_one(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", httpx.Response(200, content=line("c1", "C", 1).rstrip(), headers=NDJSON))
    target = tmp_path / "e.jsonl"
    assert api.run("audit", "export", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == line("c1", "C", 1)


def test_an_answer_that_is_not_json_lines_is_an_api_error(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", httpx.Response(200, json={"items": []}))
    result = api.run("audit", "export", "-o", str(tmp_path / "e.jsonl"))
    assert result.exit_code == 3
    assert "is not JSON Lines" in result.stderr
    assert os.listdir(tmp_path) == []


def test_a_non_auditor_is_refused(api: FakeApi, tmp_path: Path) -> None:
    api.on("GET", "/audit/export", problem(403, "Forbidden", "needs the auditors group"))
    result = api.run("audit", "export", "-o", str(tmp_path / "e.jsonl"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Forbidden (403)")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args", [(), ("-o", "no/such/folder/e.jsonl")])
def test_usage_errors_send_nothing(api: FakeApi, tmp_path: Path, args: tuple[str, ...]) -> None:
    result = api.run("audit", "export", *(str(tmp_path / arg) if "/" in arg else arg for arg in args))
    assert result.exit_code == 2
    assert api.requests == []


def test_an_export_verifies(api: FakeApi, tmp_path: Path) -> None:
    lines = [json.dumps(event, ensure_ascii=False).encode() + b"\n" for event in valid()]
    pages = [b"".join(lines[:3]), b"".join(lines[3:])]
    api.on(
        "GET",
        "/audit/export",
        httpx.Response(200, content=pages[0], headers={**NDJSON, "X-Next-Token": "t1"}),
        httpx.Response(200, content=pages[1], headers=NDJSON),
    )
    target = tmp_path / "events.jsonl"
    assert api.run("audit", "export", "-o", str(target)).exit_code == 0
    verified = api.run("audit", "verify", str(target))
    assert verified.exit_code == 0, verified.stdout
    assert verified.stdout == "8 events in 2 chains: intact\n"
