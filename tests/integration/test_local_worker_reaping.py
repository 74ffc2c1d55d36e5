"""The local stack's Lambda runtime gives back what a burst took (``local.lambda_runtime``): a
worker idle for longer than ``worker_idle_seconds`` is stopped, the function's last one is kept
warm, and the function still answers after."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local.deployed import FunctionSpec
from local.lambda_runtime import Invocation, LambdaRuntime

HANDLER = """
import os, time

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"pid": os.getpid()}
"""
IDLE_SECONDS = 1.0
BURST = 3


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="Sleepy",
        name="sleepy",
        arn="arn:aws:lambda:us-east-1:123456789012:function:sleepy",
        handler="app.handler",
        code_dir=code,
        layer_dirs=(),
        environment={},
        timeout=30,
        memory_size=128,
    )
    runtime = LambdaRuntime(
        {"Sleepy": spec}, "http://127.0.0.1:9", tmp_path / "logs", BURST, worker_idle_seconds=IDLE_SECONDS
    )
    yield runtime
    runtime.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a worker the runtime stopped has been waited for: its pid is gone
    except ProcessLookupError:
        return False
    return True


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_workers_a_burst_started_are_stopped_once_idle_and_the_function_still_answers(
    runtime: LambdaRuntime,
) -> None:
    pool = runtime.pool("sleepy")
    assert pool is not None
    # Given a burst of overlapping invocations that started BURST workers
    pids: list[int] = []
    burst = [
        threading.Thread(target=lambda: pids.append(runtime.invoke("sleepy", {"sleep": 0.5}).json()["pid"]))
        for _ in range(BURST)
    ]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    assert len(set(pids)) == BURST and pool.workers == BURST
    # When they stay idle for longer than worker_idle_seconds
    _wait_until(lambda: pool.workers == 1, IDLE_SECONDS + 10)
    # Then all but one are stopped (their processes gone), and the one kept answers warm
    assert pool.workers == 1
    assert sum(_alive(pid) for pid in pids) == 1
    later = runtime.invoke("sleepy", {})
    assert not later.function_error and not later.cold_start
    assert later.json()["pid"] in pids and _alive(later.json()["pid"])


def test_a_busy_worker_is_not_stopped_while_an_idle_one_is(runtime: LambdaRuntime) -> None:
    pool = runtime.pool("sleepy")
    assert pool is not None
    # Given one invocation that lasts three times the idle time, and a second worker beside it
    outcome: list[Invocation] = []
    long = threading.Thread(
        target=lambda: outcome.append(runtime.invoke("sleepy", {"sleep": 3 * IDLE_SECONDS}))
    )
    long.start()
    _wait_until(lambda: pool.workers == 1, 10)
    time.sleep(0.2)
    beside = runtime.invoke("sleepy", {})
    assert beside.cold_start and pool.workers == 2
    # When the second stays idle: it is stopped, while the busy one goes on
    _wait_until(lambda: not _alive(beside.json()["pid"]), IDLE_SECONDS + 10)
    assert not _alive(beside.json()["pid"]) and long.is_alive()
    long.join()
    # Then the long invocation ended as it should, and its worker is the one kept warm
    assert [result.function_error for result in outcome] == [False]
    assert pool.workers == 1
    after = runtime.invoke("sleepy", {})
    assert not after.cold_start and after.json()["pid"] == outcome[0].json()["pid"]
