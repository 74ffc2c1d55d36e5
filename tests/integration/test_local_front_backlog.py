"""The local stack's front holds a burst of concurrent connects (``local.front``): its listen
backlog is not socketserver's default of 5, so 50 connects opened at once, before the accept
loop takes any, are all completed by the kernel and all answered."""

from __future__ import annotations

import socket
from typing import Any

from local.front import Front, Reply

BURST = 50


def test_a_burst_of_50_connects_before_any_is_accepted_is_answered() -> None:
    # Given a front that listens but whose accept loop has not started
    front = Front(0)
    front.configure([], None, None, {"/ping": lambda query: Reply.json(200, {"pong": True})})  # type: ignore[arg-type]
    sockets: list[socket.socket] = []
    try:
        # When 50 clients connect at once and send their request
        for _ in range(BURST):
            client = socket.create_connection(("127.0.0.1", front.port), timeout=2)
            sockets.append(client)
            client.sendall(b"GET /ping HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        front.start()
        # Then every one of them is answered
        answers = [_read_all(client) for client in sockets]
    finally:
        for client in sockets:
            client.close()
        front.stop()
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"HTTP/1.1 200 OK"] * BURST
    assert all(answer.endswith(b'{"pong": true}') for answer in answers)


def _read_all(client: Any) -> bytes:
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_moto_server_holds_the_same_burst() -> None:
    # moto's server (werkzeug's, as local.moto_server makes it) listens with a backlog of its own
    from werkzeug.serving import ThreadedWSGIServer

    assert ThreadedWSGIServer.request_queue_size >= BURST
