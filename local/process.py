"""The local stack as a subprocess (``python -m local``): for tests and benchmarks that want it
apart from their own process, or several at once.

    with StackProcess(env={"APPROVAL_TIMEOUT_SECONDS": "60"}) as stack:
        requests.get(f"{stack.url}/health")

``env`` holds the settings of ``python -m local`` (``local/__main__.py``), e.g.
``LOCAL_DIGEST_INTERVAL_SECONDS`` (how often the scheduled rules fire) and
``DIGEST_SETTLE_SECONDS`` (the template's ``DigestSettleSeconds``).

The stack answers ``/health`` only once it is deployed and seeded, so ``start`` returns when it
is ready.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent  # not from local.template: keep this import light
START_TIMEOUT_SECONDS = 120


def free_port() -> int:
    """A port nobody listens on now (the stack binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class StackFailed(RuntimeError):
    """The stack process exited or did not become ready; the message ends with its output."""


class StackProcess:
    """``python -m local`` on ``port`` (a free one by default) with extra environment ``env``."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        # Its output and its functions' logs stay in a folder of its own after it stops.
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"local-stack-{self.port}-"))
        self.output_path = self.state_dir / "output.log"
        self.env = {
            **os.environ,
            "LOCAL_STATE_DIR": str(self.state_dir),
            **(env or {}),
            "PORT": str(self.port),
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> StackProcess:
        """Start the stack and wait for ``/health``; raises ``StackFailed``."""
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local"],
                cwd=ROOT,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackFailed(
                    f"the local stack exited with {self.process.returncode} (logs in {self.state_dir}):\n"
                    f"{self.output()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise StackFailed(
            f"the local stack was not ready within {timeout:.0f} s (logs in {self.state_dir}):\n"
            f"{self.output()}"
        )

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as Ctrl-C or a process manager would; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> StackProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
