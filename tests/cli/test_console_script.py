"""The installed console script, run as a user runs it: exit codes, stdout alone for results,
one clean line on stderr for errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ACCESS_KEY, CONNECTION_ID

# `make venv` installs the package (editable) into the virtualenv that runs the tests.
ACCTCONN = Path(sys.executable).with_name("acctconn")


def acctconn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert ACCTCONN.is_file(), f"{ACCTCONN} is missing: run make venv"
    return subprocess.run(
        [str(ACCTCONN), *args], capture_output=True, text=True, timeout=60, env=env or dict(os.environ)
    )


def test_help_names_the_options_the_command_and_the_exit_codes() -> None:
    result = acctconn("--help")
    assert result.returncode == 0, result.stderr
    for text in ("--api", "ACCTCONN_API", "--token", "ACCTCONN_TOKEN", "--json", "prove", "Exit codes"):
        assert text in result.stdout
    prove_help = acctconn("prove", "--help")
    assert prove_help.returncode == 0
    for text in ("CONNECTION_ID", "--region", "--endpoint-url", "--profile", "never sent"):
        assert text in prove_help.stdout


def test_prove_prints_the_proof_alone_on_stdout() -> None:
    result = acctconn("prove", CONNECTION_ID)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    proof = json.loads(result.stdout)
    assert proof["headers"]["X-Account-Connection-Id"] == CONNECTION_ID
    assert f"Credential={ACCESS_KEY}/" in proof["headers"]["Authorization"]


def test_a_bad_connection_id_is_a_usage_error_without_traceback() -> None:
    result = acctconn("prove", "not-a-uuid")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "is not a connection id" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_credentials_is_a_clean_error(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = acctconn("prove", CONNECTION_ID, env=env)
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.startswith("Error: no AWS credentials found")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("--version",), ("-h",)])
def test_python_dash_m_runs_the_same_command(args: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "acctconn", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "acctconn" in result.stdout


@pytest.mark.parametrize(
    ("command", "texts"),
    [
        (("connections", "list"), ("SPACE_ID", "--status", "--limit", "--next-token", "--all", "Examples")),
        (("connections", "get"), ("CONNECTION_ID", "history", "Examples")),
        (
            ("connections", "request"),
            ("--account", "--name", "--role", "--idempotency-key", "only this once"),
        ),
        (("connections", "cancel"), ("CANCELLED", "DISCONNECTED", "Examples")),
        (("approvers", "list"), ("--all", "Examples")),
        (("approvers", "put"), ("--email", "--approver", "--quorum", "--remind-after", "--escalate-to")),
        (("audit", "connections"), ("--status", "--space", "--account", "--from", "--to", "--csv", "--all")),
        (("audit", "events"), ("--connection", "--actor", "--from", "--to", "--csv", "--all")),
    ],
)
def test_every_command_has_help_with_examples_and_exit_codes(
    command: tuple[str, ...], texts: tuple[str, ...]
) -> None:
    # python -m acctconn: the code on sys.path (PYTHONPATH reaches a worktree's copy), same main().
    result = subprocess.run(
        [sys.executable, "-m", "acctconn", *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for text in (*texts, "Exit codes"):
        assert text in result.stdout, text
