"""Fixtures shared by unit and integration tests: AWS credentials that go nowhere, and the
settings and the composition root's adapters forgotten around each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.builders import LinkClock

pytest_plugins = ["tests.proofs"]

# Set before any boto3 client exists: nothing in the tests may reach a real AWS account.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="1",
    POWERTOOLS_SERVICE_NAME="account-connections",
    POWERTOOLS_METRICS_NAMESPACE="AccountConnections",
    POWERTOOLS_DEV="false",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session", autouse=True)
def _models_built() -> None:
    """Every model built before any test: several tests run handlers on threads at once, and
    pydantic's deferred build is not thread-safe (``snapstart.build_everything``)."""
    from account_connections import snapstart

    snapstart.build_everything()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from account_connections import wiring
    from account_connections.settings import load_settings

    load_settings.cache_clear()
    wiring.reset()
    yield
    load_settings.cache_clear()
    wiring.reset()


@pytest.fixture
def link_clock(monkeypatch: pytest.MonkeyPatch) -> LinkClock:
    """Stop the clock that new links are issued and rate-limited by; ``advance`` moves it."""
    clock = LinkClock()
    monkeypatch.setattr("account_connections.logic.links.utcnow", clock)
    return clock
