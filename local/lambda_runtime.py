"""Lambda without Docker: each function runs its real handler in its own worker processes.

A worker is one execution environment: started on first use (a cold start, which imports the
handler), then reused, one invocation at a time; a function gets more workers, up to a limit,
when invocations overlap. A worker idle for longer than ``worker_idle_seconds`` is stopped, as
Lambda retires idle environments, so the memory a burst took comes back; the function's last
worker is kept warm. Each worker has exactly its function's environment (from the deployed
template) plus what Lambda adds, its AWS clients pointed at moto, and nothing of this process's
``os.environ``.

``install_moto_hook`` makes moto's ``lambda:Invoke`` (which the state machine engine calls) run
the handler too. An unhandled exception becomes a function error, as in Lambda:
``{"errorType", "errorMessage", "stackTrace"}`` with ``X-Amz-Function-Error``, so the state
machine's ``Retry`` and ``Catch`` see the exception's class name.
"""

from __future__ import annotations

import json
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local.deployed import FunctionSpec
from local.moto_server import DUMMY_CREDENTIALS
from local.template import REGION

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">I")
_WORKER = Path(__file__).resolve().with_name("worker.py")
# Run the worker file without putting this repository on the function's import path.
_BOOTSTRAP = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
INIT_TIMEOUT_SECONDS = 30  # Lambda allows 10 s; the first import of a cold machine is slower
# How long a worker may stay idle before it is stopped (the function's last one is kept).
WORKER_IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: the JSON payload, and whether it is a function error."""

    payload: bytes
    function_error: bool
    cold_start: bool
    duration_ms: float

    def json(self) -> Any:
        return json.loads(self.payload)


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()


class WorkerDied(RuntimeError):
    pass


class Worker:
    """One execution environment of one function (a subprocess)."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log_file: IO[bytes]) -> None:
        self.spec = spec
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(_WORKER)],
            cwd=spec.code_dir,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops its workers itself
        )
        try:
            self._read(time.monotonic() + INIT_TIMEOUT_SECONDS)  # the "ready" frame: init done
        except (TimeoutError, WorkerDied):
            self.process.kill()
            self.stop()
            raise
        self.init_ms = (time.monotonic() - started) * 1000
        self.idle_since = time.monotonic()

    def invoke(self, event: Any, request_id: str) -> Invocation:
        """Run one invocation; raises ``TimeoutError`` or ``WorkerDied`` (the worker is then useless)."""
        started = time.monotonic()
        deadline = started + self.spec.timeout
        request = {
            "event": event,
            "requestId": request_id,
            "deadlineMs": int((time.time() + self.spec.timeout) * 1000),
        }
        data = json.dumps(request).encode()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(_HEADER.pack(len(data)) + data)
            self.process.stdin.flush()
        except OSError as exc:
            raise WorkerDied(str(exc)) from exc
        answer = self._read(deadline)
        duration = (time.monotonic() - started) * 1000
        if "error" in answer:
            return Invocation(json.dumps(answer["error"]).encode(), True, False, duration)
        return Invocation(answer["payload"].encode(), False, False, duration)

    def _read(self, deadline: float) -> dict[str, Any]:
        header = self._read_exact(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(header)
        return json.loads(self._read_exact(size, deadline))

    def _read_exact(self, size: int, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        chunks: list[bytes] = []
        remaining = size
        while remaining:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            chunk = os.read(fd, remaining)
            if not chunk:
                raise WorkerDied(f"exit code {self.process.poll()}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()  # end of input: the worker's loop ends
                self.process.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class FunctionPool:
    """The execution environments of one function: reused when idle, added up to ``max_workers``."""

    def __init__(
        self, spec: FunctionSpec, environment: dict[str, str], log_path: Path, max_workers: int
    ) -> None:
        self.spec = spec
        self.environment = environment
        self.max_workers = max_workers
        self._log = log_path.open("ab")
        self._idle: list[Worker] = []
        self._count = 0
        self._closed = False
        self._available = threading.Condition()

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        request_id = request_id or str(uuid.uuid4())
        worker, cold = self._acquire()
        if worker is None:
            return Invocation(
                _error_payload("Runtime.ExitError", "the environment could not start"), True, cold, 0
            )
        try:
            result = worker.invoke(event, request_id)
        except TimeoutError:
            self._discard(worker)
            message = f"{request_id} Task timed out after {self.spec.timeout:.2f} seconds"
            return Invocation(
                _error_payload("Sandbox.Timedout", message), True, cold, self.spec.timeout * 1000
            )
        except WorkerDied as exc:
            self._discard(worker)
            return Invocation(
                _error_payload("Runtime.ExitError", f"the runtime exited: {exc}"), True, cold, 0
            )
        self._release(worker)
        return Invocation(result.payload, result.function_error, cold, result.duration_ms)

    def _acquire(self) -> tuple[Worker | None, bool]:
        with self._available:
            while not self._idle and self._count >= self.max_workers and not self._closed:
                self._available.wait()
            if self._closed:
                return None, False
            if self._idle:
                return self._idle.pop(), False
            self._count += 1
        try:
            worker = Worker(self.spec, self.environment, self._log)
        except Exception:
            log.exception("cold start failed", extra={"function": self.spec.logical_id})
            with self._available:
                self._count -= 1
                self._available.notify()
            return None, True
        log.info("cold start of %s in %.0f ms", self.spec.logical_id, worker.init_ms)
        return worker, True

    def _release(self, worker: Worker) -> None:
        with self._available:
            if self._closed:
                worker.stop()
                return
            worker.idle_since = time.monotonic()
            # The most recently used worker is taken first (``_acquire`` pops the end), so under a
            # light load the others stay idle and are reaped.
            self._idle.append(worker)
            self._available.notify()

    @property
    def workers(self) -> int:
        """Execution environments started and not stopped (busy, idle or starting)."""
        with self._available:
            return self._count

    def reap(self, idle_seconds: float, keep: int = 1) -> int:
        """Stop the workers idle for longer than ``idle_seconds``, leaving at least ``keep``
        workers; returns how many were stopped."""
        deadline = time.monotonic() - idle_seconds
        with self._available:
            expired = [worker for worker in self._idle if worker.idle_since <= deadline]
            expired = expired[: max(0, min(len(expired), self._count - keep))]
            for worker in expired:
                self._idle.remove(worker)
        for worker in expired:  # outside the lock: a worker takes a moment to exit
            worker.stop()
        with self._available:
            self._count -= len(expired)  # counted until gone: ``workers`` are processes that exist
            self._available.notify_all()
        if expired:
            log.info("stopped %d idle worker(s) of %s", len(expired), self.spec.logical_id)
        return len(expired)

    def _discard(self, worker: Worker) -> None:
        worker.process.kill()
        worker.stop()
        with self._available:
            self._count -= 1
            self._available.notify()

    def close(self) -> None:
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        stopping = [threading.Thread(target=worker.stop) for worker in idle]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        self._log.close()


def function_environment(spec: FunctionSpec, endpoint: str) -> dict[str, str]:
    """The environment Lambda would give this function: the template's variables, what Lambda
    sets itself, and (local only) AWS pointed at moto with dummy credentials and X-Ray off."""
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "TZ": ":UTC",
        "LANG": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(path) for path in spec.layer_dirs),
        "PYTHONUNBUFFERED": "1",
        "LOCAL_FUNCTION_ARN": spec.arn,
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
    }
    environment = {"POWERTOOLS_TRACE_DISABLED": "true", **spec.environment}
    environment.update(reserved)
    return environment


class LambdaRuntime:
    """Every function of the stack, by name or ARN."""

    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        endpoint: str,
        log_dir: Path,
        max_workers_per_function: int = 4,
        worker_idle_seconds: float | None = WORKER_IDLE_SECONDS,
    ) -> None:
        """``worker_idle_seconds``: how long a worker may stay idle before it is stopped (each
        function keeps its last one); ``None`` keeps every worker until ``close``."""
        log_dir.mkdir(parents=True, exist_ok=True)
        self.pools = {
            spec.name: FunctionPool(
                spec,
                function_environment(spec, endpoint),
                log_dir / f"{spec.logical_id}.log",
                max_workers_per_function,
            )
            for spec in functions.values()
        }
        self._async: list[threading.Thread] = []
        self.worker_idle_seconds = worker_idle_seconds
        self._closing = threading.Event()
        self._reaper: threading.Thread | None = None
        if worker_idle_seconds is not None:
            self._reaper = threading.Thread(target=self._reap, name="worker-reaper", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        assert self.worker_idle_seconds is not None
        pause = min(5.0, max(0.1, self.worker_idle_seconds / 4))
        while not self._closing.wait(pause):
            for pool in self.pools.values():
                try:
                    pool.reap(self.worker_idle_seconds)
                except Exception:  # a worker that will not stop must not stop the reaping
                    log.exception("reaping the workers of %s failed", pool.spec.logical_id)

    def pool(self, name_or_arn: str) -> FunctionPool | None:
        name = name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn
        return self.pools.get(name)

    def invoke(self, name_or_arn: str, event: Any, request_id: str | None = None) -> Invocation:
        pool = self.pool(name_or_arn)
        if pool is None:
            raise KeyError(f"no function {name_or_arn}")
        return pool.invoke(event, request_id)

    def invoke_async(self, name_or_arn: str, event: Any) -> None:
        thread = threading.Thread(target=self.invoke, args=(name_or_arn, event), daemon=True)
        thread.start()

    def close(self) -> None:
        """Stop every worker, all functions at once (each worker takes a moment to exit)."""
        self._closing.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
        closing = [threading.Thread(target=pool.close) for pool in self.pools.values()]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()


def install_moto_hook(runtime: LambdaRuntime) -> Callable[[], None]:
    """Route moto's ``lambda:Invoke`` to ``runtime``; returns the function that undoes it."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke

    def invoke(
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> str | bytes | None:
        pool = runtime.pool(function_name)
        if pool is None:
            return original(backend, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body) if body else {}
        if headers.get("X-Amz-Invocation-Type") == "Event":
            runtime.invoke_async(function_name, event)
            return b""
        result = pool.invoke(event)
        if result.function_error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result.payload

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign,assignment]

    def uninstall() -> None:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]

    return uninstall
