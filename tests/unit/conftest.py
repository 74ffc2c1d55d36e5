"""The unit tier runs without a network: every test under tests/unit gets pytest-socket's
``disable_socket`` marker (opening any socket raises ``SocketBlockedError``), and the ports are
in-memory fakes (``tests.fakes``) seeded as SPEC.md's local stack (``tests.unit.world``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from account_connections.logic import backoff
from tests.builders import LinkClock
from tests.unit.world import World

UNIT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Called with every collected item, the other tiers' too: mark only this folder's.
    for item in items:
        if UNIT in item.path.resolve().parents:
            item.add_marker(pytest.mark.disable_socket)


@pytest.fixture
def world(link_clock: LinkClock) -> World:
    """The seeded world, its links issued on ``link_clock`` (stopped; ``world.clock.advance()``)."""
    return World.seeded(link_clock)


@pytest.fixture(autouse=True)
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses between the attempts of a change that lost a race (``logic.backoff``), recorded
    instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(backoff, "sleep", slept.append)
    return slept
