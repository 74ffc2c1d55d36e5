"""What a function imports before its first event: with tracing off (the local stack, the bench,
tests) no X-Ray SDK; with tracing on (every deployed function) powertools' own X-Ray provider.
Each case is a fresh interpreter, as a Lambda cold start is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import FUNCTIONS, ROOT

PROBE = """
import importlib, json, sys
sys.path.insert(0, ".")
app = importlib.import_module("app")
from account_connections.observability import tracer
print(json.dumps({"xray": "aws_xray_sdk.core" in sys.modules, "wrapt": "wrapt" in sys.modules,
                  "provider": type(tracer.provider).__name__}))
"""


def _imports(function_dir: str, **env: str) -> dict[str, object]:
    dropped = ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL")
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    environment.update(
        PYTHONPATH=str(ROOT / "layers" / "shared"), TABLE_NAME="t", AWS_DEFAULT_REGION="us-east-1"
    )
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=FUNCTIONS / function_dir, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "function_dir", sorted(path.name for path in FUNCTIONS.iterdir() if (path / "app.py").exists())
)
def test_tracing_off_imports_no_xray_sdk(function_dir: str) -> None:
    assert _imports(function_dir, POWERTOOLS_TRACE_DISABLED="true") == {
        "xray": False, "wrapt": False, "provider": "UntracedProvider"
    }  # fmt: skip


def test_tracing_on_in_lambda_is_powertools_xray_provider() -> None:
    found = _imports("record_outcome", LAMBDA_TASK_ROOT=str(FUNCTIONS / "record_outcome"))
    assert found["xray"] is True and str(found["provider"]).endswith("AWSXRayRecorder")
