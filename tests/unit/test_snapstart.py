"""SnapStart's hooks (account_connections.snapstart): registered only where the runtime offers
them; before the snapshot the SDK's models are loaded and no client is kept; after a restore
nothing built before it is used again."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import pytest

from account_connections import snapstart, wiring
from account_connections.adapters.clients import client


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Callable[[], object]]]:
    """Lambda's ``snapshot_restore_py``, recording the hooks registered."""
    hooks: dict[str, list[Callable[[], object]]] = {"before": [], "after": []}
    module = types.ModuleType("snapshot_restore_py")
    module.register_before_snapshot = hooks["before"].append  # type: ignore[attr-defined]
    module.register_after_restore = hooks["after"].append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", module)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TABLE_NAME", "t")
    return hooks


def test_outside_snapstart_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails
    assert snapstart.prepare(["dynamodb"]) is False


def test_before_the_snapshot_models_load_and_no_client_is_kept(
    runtime: dict[str, list[Callable[[], object]]],
) -> None:
    client.cache_clear()
    assert snapstart.prepare(["dynamodb", "sns"]) is True
    (before,) = runtime["before"]
    before()
    assert client.cache_info().currsize == 0  # made, then dropped: nothing from before the snapshot kept


def test_after_a_restore_every_client_and_adapter_is_made_anew(
    runtime: dict[str, list[Callable[[], object]]],
) -> None:
    snapstart.prepare(["dynamodb"])
    table, dynamodb = wiring.table(), client("dynamodb")
    (after,) = runtime["after"]
    after()
    assert wiring.table() is not table and client("dynamodb") is not dynamodb


def test_an_adapter_makes_its_client_on_its_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold start makes only the clients its event calls (building an adapter makes none)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:m")
    monkeypatch.setenv("TABLE_NAME", "t")
    wiring.reset()
    client.cache_clear()
    workflow = wiring.workflow()
    assert client.cache_info().currsize == 0
    assert workflow.sfn.meta.service_model.service_name == "stepfunctions"  # the first use
    assert client.cache_info().currsize == 1 and workflow.sfn.meta is client("stepfunctions").meta
