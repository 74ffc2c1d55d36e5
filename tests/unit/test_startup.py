"""Loading with the collector held (account_connections.startup): what a process loads for good
(a handler's modules, a service's SDK models) is made with no collection walking it, then frozen
out of later ones; the collector runs again afterwards. That a handler's module loads this way is
checked in a fresh interpreter (tests/checks/test_cold_imports.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from account_connections import startup
from account_connections.adapters.clients import client


@pytest.fixture
def collector() -> Iterator[None]:
    """The collector as this test found it, and nothing frozen by it left frozen."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_a_service_s_first_client_is_made_with_the_collector_held_then_frozen(
    collector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    gc.enable()
    gc.unfreeze()
    seen: list[bool] = []
    make = boto3.client

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return make(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", watched)
    client.cache_clear()
    try:
        client("sqs")
    finally:
        client.cache_clear()
    assert seen == [False]  # held while the service's models load
    assert gc.isenabled() and gc.get_freeze_count() > 0


def test_loading_inside_a_module_s_load_leaves_the_collector_to_it(collector: None) -> None:
    """While a handler's module loads the collector is already held: it stays held, and nothing
    is frozen yet (the module's end, ``loaded()``, freezes all of it)."""
    gc.disable()
    gc.unfreeze()
    with startup.loading():
        assert not gc.isenabled()
    assert not gc.isenabled() and gc.get_freeze_count() == 0


def test_loaded_freezes_what_was_loaded_and_enables_the_collector(collector: None) -> None:
    gc.disable()
    gc.unfreeze()
    startup.loaded()
    assert gc.isenabled() and gc.get_freeze_count() > 0
