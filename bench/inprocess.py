"""moto in this process with the real ASL and handlers: tests/workflow/conftest.py's
``moto_stack``, seeded by ``Stack.reset`` as for a test (the state machine from the ASL file with
its substitutions, Lambda steps routed to our handlers, the table from template.yaml, the seed),
driven outside pytest, plus a botocore ``before-call`` hook that counts every AWS call by
service.operation and thread."""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest


def _item_kind(params: Any) -> str:
    """``(TOKEN)`` for a single-item DynamoDB call on ``TOKEN#...``: which item it reads or writes."""
    body = params.get("body") if isinstance(params, dict) else None
    if isinstance(body, bytes | str) and body:
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    if not isinstance(body, dict):
        return ""
    key = body.get("Key") or body.get("Item") or {}
    pk = key.get("pk", {}).get("S") if isinstance(key, dict) else None
    return f"({pk.split('#', 1)[0]})" if isinstance(pk, str) else ""


@dataclass
class CallLog:
    """Every AWS call a botocore client of this process made while ``recording``."""

    calls: list[tuple[int, str]] = field(default_factory=list)  # (thread id, "service.Operation")
    recording: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.recording:
            name = f"{model.service_model.service_name}.{model.name}" + _item_kind(params)
            with self.lock:
                self.calls.append((threading.get_ident(), name))

    @contextmanager
    def record(self) -> Iterator[list[str]]:
        """The calls made by this thread inside the block (the workflow's own threads excluded)."""
        me = threading.get_ident()
        start = len(self.calls)
        seen: list[str] = []
        self.recording = True
        try:
            yield seen
        finally:
            self.recording = False
            seen.extend(name for thread, name in self.calls[start:] if thread == me)


# As tests/conftest.py: credentials that go nowhere, X-Ray off, set before any client exists.
TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "account-connections",
    "POWERTOOLS_METRICS_NAMESPACE": "AccountConnections",
    "POWERTOOLS_DEV": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",  # the handlers' INFO lines would drown the bench's output
}


@contextmanager
def workflow_stack() -> Iterator[tuple[Any, CallLog]]:
    """(tests.workflow.conftest.Stack, CallLog): moto, the ASL, the handlers and the seed."""
    saved = {key: os.environ.get(key) for key in [*TEST_ENVIRONMENT, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.update(TEST_ENVIRONMENT)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    from account_connections import snapstart

    snapstart.build_everything()  # moto's executions run the handlers on threads at once
    try:
        with _workflow_stack() as result:
            yield result
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _workflow_stack() -> Iterator[tuple[Any, CallLog]]:
    from account_connections.adapters.clients import client
    from account_connections.settings import load_settings
    from tests.workflow import conftest

    load_settings.cache_clear()
    log = CallLog()
    # Clients copy their session's event hooks when created: register first, then let every
    # client (the handlers' cached ones included) be created anew.
    with pytest.MonkeyPatch.context() as monkeypatch, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # powertools: "No application metrics to publish"
        with conftest.moto_stack(monkeypatch) as stack:  # mock_aws has now reset boto3's default session
            stack.reset(monkeypatch)
            boto3.setup_default_session()
            assert boto3.DEFAULT_SESSION is not None
            boto3.DEFAULT_SESSION.events.register("before-call", log.hook, unique_id="bench-call-log")
            client.cache_clear()
            try:
                yield stack, log
            finally:
                client.cache_clear()
                load_settings.cache_clear()
