"""``make smoke`` against the local stack, as an operator runs it against a deployed one: every
check passes, so the checks cannot rot before anyone points them at AWS."""

from __future__ import annotations

import os
import subprocess

import pytest

from local.process import StackProcess
from local.seed_data import ADMIN_ACCOUNT, AUDITOR, REQUESTER
from tests.e2e.client import StackClient
from tests.support import ROOT

pytestmark = pytest.mark.e2e

CHECKS = ["health", "documents", "refusals without identity", "a request made and cancelled",
          "its audit trail verifies"]  # fmt: skip


def test_make_smoke_passes_against_the_local_stack(stack: StackProcess, client: StackClient) -> None:
    space = client.new_space({REQUESTER: "SPACE_ADMIN"})
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ACCTCONN_", "MAKE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "cli"), env.get("PYTHONPATH", "")])
    tokens = [f"TOKEN={client.token(REQUESTER)}", f"AUDITOR_TOKEN={client.token(AUDITOR)}"]
    arguments = [f"URL={stack.url}", *tokens, f"SPACE={space}", f"ACCOUNT={ADMIN_ACCOUNT}"]
    done = subprocess.run(["make", "--no-print-directory", "smoke", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert [line[6:].split(" (", 1)[0] for line in lines] == CHECKS
    assert all(line.startswith("ok") for line in lines), done.stdout
    assert f"smoke: 5 of 5 checks passed against {stack.url}" in done.stdout
    # The tokens never were on acctconn's command line (make prints the recipe it runs).
    assert client.token(REQUESTER)[:20] not in done.stdout
