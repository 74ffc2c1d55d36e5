"""End-to-end fixtures: the local stack as a subprocess on a free port, driven only over HTTP,
and a real headless Chromium (Debian's) for the administrator's click.

The expiry test needs a stack with the shortest approval window the template allows (60 s).
Its stack starts, and its request is made, in the background as soon as the tests are
collected, and the test runs last: the wait overlaps the other tests instead of adding to them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.process import StackProcess
from local.seed_data import ADMIN_ACCOUNT, REQUESTER
from tests.e2e.client import StackClient

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHORT_WINDOW_SECONDS = 60  # the template's MinValue for ApprovalTimeoutSeconds
EXPIRING_FIXTURE = "expiring_connection"
DIGEST_INTERVAL_SECONDS = 5  # how often the session stack's scheduled rules fire


@pytest.fixture(scope="session")
def stack() -> Iterator[StackProcess]:
    # At DEBUG, so that what the tests check of its logs (no link token in them) holds at every level.
    # Its scheduled rules (the digest job) fire every few seconds, not every hour.
    env = {"LOCAL_LOG_LEVEL": "DEBUG", "LOCAL_DIGEST_INTERVAL_SECONDS": str(DIGEST_INTERVAL_SECONDS)}
    with StackProcess(env=env) as running:
        yield running
    assert running.process is not None and running.process.returncode == 0, running.output()[-3000:]


@pytest.fixture(scope="session")
def client(stack: StackProcess) -> StackClient:
    return StackClient(stack.url)


# ---- the expiring request, prepared in the background ------------------------------------


@dataclass
class ExpiringConnection:
    stack: StackProcess
    client: StackClient
    space_id: str
    connection: dict[str, Any]
    link: str
    created_at: float  # time.monotonic() when the request was made


class _Background:
    """Starts the short-window stack and makes the request on a thread."""

    def __init__(self) -> None:
        self.stack = StackProcess(env={"APPROVAL_TIMEOUT_SECONDS": str(SHORT_WINDOW_SECONDS)})
        self.result: ExpiringConnection | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="expiring-stack", daemon=True)

    def _run(self) -> None:
        try:
            self.stack.start()
            client = StackClient(self.stack.url)
            space_id = client.new_space({REQUESTER: "SPACE_ADMIN"})
            marker = f"Expiring {uuid.uuid4().hex[:8]}"
            created = client.create_connection(REQUESTER, space_id, ADMIN_ACCOUNT, displayName=marker)
            assert created.status == 201, created.text
            created_at = time.monotonic()
            link = client.email_about(marker)["links"][0]
            self.result = ExpiringConnection(self.stack, client, space_id, created.json(), link, created_at)
        except BaseException as exc:
            self.error = exc

    def wait(self) -> ExpiringConnection:
        self.thread.join(timeout=180)
        if self.error is not None:
            raise self.error
        assert self.result is not None, "the short-window stack did not get ready"
        return self.result


_background: _Background | None = None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    global _background
    expiring = [item for item in items if EXPIRING_FIXTURE in getattr(item, "fixturenames", ())]
    if not expiring or config.option.collectonly:
        return
    items[:] = [item for item in items if item not in expiring] + expiring
    _background = _Background()
    _background.thread.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _background is not None:
        _background.thread.join(timeout=180)
        _background.stack.stop()


@pytest.fixture(scope="session")
def expiring_connection() -> ExpiringConnection:
    assert _background is not None, "started by pytest_collection_modifyitems"
    return _background.wait()


# ---- Chromium ------------------------------------------------------------------------------


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (CI runs as root on a fresh
    machine). Never a downloaded browser."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (sudo apt-get install -y chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    assert CHROMIUM.exists(), f"apt-get installed chromium but {CHROMIUM} is missing"
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            context.close()
