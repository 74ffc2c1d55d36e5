"""Running the project's command-line tools from the checks: the venv's executables, an
environment that cannot reach AWS, and the Python 3.12 that `sam build` needs on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

from tests.support import ROOT

BIN = Path(sys.executable).parent
# What Lambda runs (template.yaml Globals); `sam build` refuses any other interpreter.
LAMBDA_PYTHON = (3, 12)


def offline_env(**extra: str) -> dict[str, str]:
    """The test process's environment (tests/conftest.py: dummy credentials, a fixed region, no
    endpoint, no profile), with the SAM CLI's telemetry off."""
    env = dict(os.environ)
    env.update(SAM_CLI_TELEMETRY="0", AWS_REGION=env["AWS_DEFAULT_REGION"])
    env.update(extra)
    return env


def run(
    args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run one of the venv's tools; the output is kept for the assertion message."""
    tool = BIN / args[0]
    assert tool.exists(), f"{tool} is missing: run `make venv`"
    return subprocess.run(
        [str(tool), *args[1:]],
        cwd=cwd,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    if out.returncode != 0:  # e.g. a pyenv shim whose version is not selected
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def _pyenv_root() -> Path | None:
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


@cache
def lambda_python() -> Path | None:
    """The interpreter that matches the Lambda runtime, searched as the Makefile does: PATH, then
    every pyenv version 3.12.x. None when the machine has none."""
    candidates = ["python3.12"]
    root = _pyenv_root()
    if root:
        candidates += [str(p) for p in sorted((root / "versions").glob("3.12*/bin/python3.12"), reverse=True)]
    for candidate in candidates:
        if _version(candidate) == LAMBDA_PYTHON:
            resolved = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return Path(resolved.stdout.strip())
    return None
