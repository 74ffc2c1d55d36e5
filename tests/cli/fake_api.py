"""A fake of the service's HTTP API for the commands' tests: canned answers by method and path,
served through httpx's MockTransport to the client every command builds; nothing listens."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from click.testing import CliRunner, Result

from acctconn.main import cli

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]
PROBLEM_HEADERS = {"content-type": "application/problem+json", "X-Request-Id": "req-42"}


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(status, json=body, headers=PROBLEM_HEADERS)


@dataclass
class FakeApi:
    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> FakeApi:
        """Answer ``method path`` with ``answers`` in turn (the last one from then on)."""
        self.routes[(method, path)] = list(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return problem(404, "Not Found", f"no route {request.method} {request.url.path} in the fake")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "nothing was sent"
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)

    def run(self, *args: str, token: str | None = "jwt-of-alice", columns: int | None = 200) -> Result:
        """``acctconn ARGS`` with the token in the environment, stderr apart from stdout, in a
        terminal ``columns`` wide (None: no COLUMNS, as in a pipe)."""
        env = {"ACCTCONN_API": "http://api.test", "ACCTCONN_TOKEN": token or "", "COLUMNS": None}
        if columns is not None:
            env["COLUMNS"] = str(columns)
        return CliRunner(mix_stderr=False).invoke(cli, list(args), env=env)
