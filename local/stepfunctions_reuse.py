"""State machine steps in moto without rebuilding, per step, what does not change between them.

Profiled after ``local.stepfunctions_programs`` and the other first fixes (py-spy at 50 Hz, samples
taken only while a thread holds the GIL, 20 s of 20 concurrent requesters; docs/local-stack.md,
"Under load"), moto 5.2.5's execution threads spent, of the stack process's GIL time:

- about 11% parsing JSONPath expressions: ``asl.utils.json_path.extract_json`` (every ``.$``
  parameter, ``InputPath``, ``OutputPath``, Choice variable) and ``ResultPath`` call
  ``jsonpath_ng``'s ``parse`` (its PLY lexer and parser) on the same few dozen path strings for
  every step of every execution;
- about 9.5% making a boto3 client for every Task state (``asl.utils.boto_client.boto_client_for``,
  which calls ``boto3.client`` each time: the service model loaded, the event handlers
  registered, a new connection pool, so no connection is ever reused).

Both depend on their inputs only: a parsed path is not changed by ``find`` or
``update_or_create`` (they read it and change only the data), and a client's arguments are the
same fixed credentials, region, service and endpoint every time (``boto_client_for`` ignores the
state's credentials). So each path is parsed once per process and each (service, region,
endpoint) gets one client, shared by the execution threads (boto3 clients are thread-safe; their
creation is not, so it happens under a lock). The client's pool is sized for the execution
threads, so concurrent Task states reuse connections instead of opening and dropping them.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3
import jsonpath_ng
import jsonpath_ng.ext
from botocore.client import BaseClient
from botocore.config import Config
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

PATHS_KEPT = 4096  # distinct JSONPath strings; this stack's definition has a few dozen
POOL_CONNECTIONS = 64  # connections kept per client, above moto's concurrent executions here

parse_extended = functools.lru_cache(maxsize=PATHS_KEPT)(jsonpath_ng.ext.parse)
parse_plain = functools.lru_cache(maxsize=PATHS_KEPT)(jsonpath_ng.parse)


class SharedClients:
    """Stands in for the ``boto3`` module in moto's ``boto_client`` module: ``client(...)`` answers
    one client per set of arguments (the ``config`` aside, which moto builds the same each time)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], BaseClient] = {}
        self._lock = threading.Lock()

    def client(self, *args: Any, config: Config | None = None, **kwargs: Any) -> BaseClient:
        key = (args, tuple(sorted(kwargs.items())))
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                pooled = Config(max_pool_connections=POOL_CONNECTIONS)
                client = boto3.client(*args, config=config.merge(pooled) if config else pooled, **kwargs)  # type: ignore[call-overload]
                self._clients[key] = client
            return client

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


CLIENTS = SharedClients()


def install() -> None:
    """Patch moto's Step Functions modules in this process (idempotent)."""
    json_path.parse = parse_extended  # type: ignore[attr-defined]
    result_path.parse = parse_plain  # type: ignore[attr-defined]
    boto_client.boto3 = CLIENTS  # type: ignore[assignment]


def clear() -> None:
    """Forget the parsed paths and the clients (tests that start a new moto)."""
    parse_extended.cache_clear()
    parse_plain.cache_clear()
    CLIENTS.clear()
