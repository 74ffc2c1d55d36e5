"""The CLI's tests sign with known AWS credentials and see no AWS configuration of the machine."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from acctconn.api import ApiClient
from acctconn.app import App
from tests.cli.fake_api import FakeApi

ACCESS_KEY = "AKIDEXAMPLECLITEST"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "session-token-of-the-test"
CONNECTION_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_CONNECTION_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials in the environment; no config or credentials file, no instance metadata."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """The fake API, answering every client the commands build."""
    fake = FakeApi()

    def mocked_client(app: App) -> ApiClient:
        return ApiClient(app.api_url, app.token, transport=httpx.MockTransport(fake))

    monkeypatch.setattr(App, "client", mocked_client)
    return fake
