"""What the local stack's moto tests share: waiting for executions to finish."""

from __future__ import annotations

import time
from typing import Any


def finished(sfn: Any, arns: list[str], timeout: float = 30) -> list[dict[str, Any]]:
    """Each execution's description once it is no longer RUNNING, in the order given."""
    deadline = time.monotonic() + timeout
    described = []
    for arn in arns:
        while (described_one := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"{arn} still running"
            time.sleep(0.05)
        described.append(described_one)
    return described
