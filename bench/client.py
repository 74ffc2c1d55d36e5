"""Plain HTTP to the local stack (127.0.0.1 only): JSON in and out, status and time of each call."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

NO_ANSWER = 0  # the status of a request that got no HTTP answer (timeout, connection lost)


@dataclass
class Answer:
    status: int
    body: Any
    seconds: float


class Client:
    """One keep-alive connection to ``base_url`` (one per thread: http.client is not thread-safe)."""

    def __init__(self, base_url: str, timeout: float = 120) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.hostname != "127.0.0.1":
            raise ValueError(f"the bench only talks to 127.0.0.1, not {base_url}")
        self.host, self.port, self.timeout = parsed.hostname, parsed.port or 80, timeout
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Answer:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=data, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
                break
            except TimeoutError:  # no answer within the timeout: status 0, not retried
                self.close()
                return Answer(NO_ANSWER, "timeout", time.perf_counter() - started)
            except (http.client.HTTPException, ConnectionError) as exc:
                self.close()
                if attempt == 2:
                    return Answer(NO_ANSWER, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, parsed, seconds)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def token(base_url: str, user: str) -> str:
    answer = Client(base_url).call("GET", f"/_local/token?sub={urllib.parse.quote(user)}")
    if answer.status != 200:
        raise RuntimeError(f"/_local/token?sub={user}: {answer.status} {answer.body}")
    return str(answer.body["token"])
