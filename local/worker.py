"""One Lambda execution environment: imports one function's handler and runs its invocations.

Started by ``local.lambda_runtime`` with the function's own environment, its code folder as the
working directory and first import path (Lambda's ``/var/task``), and its layers on
``PYTHONPATH`` (Lambda's ``/opt/python``). It is run with ``runpy`` rather than ``-m`` so that
nothing of this repository but the function's code and layers is importable, as in Lambda.

Protocol on the pipes: the parent writes frames (4-byte big-endian length, JSON) to stdin; the
worker answers one frame per invocation on the stdout it was given. Everything the handler
prints goes to stderr (the function's log), never into the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def _read_frame(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return json.loads(stream.read(size))


def _write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _error(exc: BaseException, error_type: str | None = None, request_id: str = "") -> dict[str, Any]:
    """The error object the Python runtime returns for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


class Context:
    """The parts of the Lambda context object that handlers and powertools read."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ["LOCAL_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load_handler() -> Any:
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the handler's prints and logs go to the function's log
    sys.stdout = sys.stderr
    protocol_in = sys.stdin.buffer
    os.environ.pop("LOCAL_WORKER", None)
    try:
        handler = _load_handler()
        init_error = None
    except Exception as exc:  # reported on every invocation, as Lambda does
        traceback.print_exc()
        handler, init_error = None, _error(exc, "Runtime.ImportModuleError")
    _write_frame(protocol_out, {"ready": True})
    while (request := _read_frame(protocol_in)) is not None:
        if init_error is not None:
            _write_frame(protocol_out, {"error": init_error})
            continue
        context = Context(request["requestId"], request["deadlineMs"])
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            _write_frame(protocol_out, {"error": _error(exc, request_id=request["requestId"])})
            continue
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            _write_frame(protocol_out, {"error": _error(exc, "Runtime.MarshalError", request["requestId"])})
            continue
        _write_frame(protocol_out, {"payload": payload})


if __name__ == "__main__":
    main()
