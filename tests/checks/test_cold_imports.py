"""What a function does before its first event: with tracing off (the local stack, the bench,
tests) no X-Ray SDK is imported; with tracing on (every deployed function) powertools' own X-Ray
provider. Outside SnapStart no model's validator is built, no AWS client is made and no adapter's
module is imported until the first event needs it; under SnapStart all of it is done before the
snapshot. Each case is a fresh interpreter, as a Lambda cold start is."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import pytest

from account_connections import adapters
from tests.support import FUNCTIONS, ROOT

# Every module of the adapters' folder but the clients (which the composition root imports).
CLIENTS = "account_connections.adapters.clients"
ADAPTER_MODULES = [
    module.name
    for module in pkgutil.walk_packages(adapters.__path__, "account_connections.adapters.")
    if module.name != CLIENTS
]

PROBE = """
import gc, importlib, json, sys
sys.path.insert(0, ".")
collections = []
def collected(phase, info):  # once the handler's module has begun (it imports gc first)
    if phase == "start" and hasattr(sys.modules.get("app"), "gc"):
        collections.append(info["generation"])
gc.callbacks.append(collected)
app = importlib.import_module("app")
loading_collections = list(collections)
from account_connections.adapters.clients import client
from account_connections.domain.fields import Model
from account_connections.observability import tracer
def models(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from models(sub)
def names(complete):
    return sorted(m.__qualname__ for m in set(models(Model)) if m.__pydantic_complete__ is complete)
warming_collections = []
if sys.argv[1:] == ["before-snapshot"]:
    from account_connections import snapstart
    collections.clear()
    snapstart.warm([])
    warming_collections = list(collections)
print(json.dumps({"collections_while_loading": loading_collections, "gc_enabled": gc.isenabled(),
                  "collections_while_warming": warming_collections,
                  "frozen": gc.get_freeze_count(),
                  "xray": "aws_xray_sdk.core" in sys.modules, "wrapt": "wrapt" in sys.modules,
                  "provider": type(tracer.provider).__name__,
                  "built": names(True), "pending": names(False),
                  "clients": client.cache_info().currsize,
                  "openapi_models": "aws_lambda_powertools.event_handler.openapi.models" in sys.modules,
                  "idna": "encodings.idna" in sys.modules,
                  "adapters": sorted(name for name in sys.modules if name != client.__module__
                                     and name.startswith("account_connections.adapters."))}))
"""


def _imports(function_dir: str, *args: str, **env: str) -> dict[str, object]:
    dropped = ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL")
    environment = {key: value for key, value in os.environ.items() if key not in dropped}
    environment.update(
        PYTHONPATH=str(ROOT / "layers" / "shared"), TABLE_NAME="t", AWS_DEFAULT_REGION="us-east-1"
    )
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=FUNCTIONS / function_dir, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


FUNCTION_DIRS = sorted(path.name for path in FUNCTIONS.iterdir() if (path / "app.py").exists())


@pytest.mark.parametrize("function_dir", FUNCTION_DIRS)
def test_tracing_off_imports_no_xray_sdk(function_dir: str) -> None:
    found = _imports(function_dir, POWERTOOLS_TRACE_DISABLED="true")
    assert (found["xray"], found["wrapt"], found["provider"]) == (False, False, "UntracedProvider")


@pytest.mark.parametrize("function_dir", FUNCTION_DIRS)
def test_importing_a_handler_builds_no_model_makes_no_client_imports_no_adapter(function_dir: str) -> None:
    """Each is done by the first event that needs it (a model's validator on its first use, a
    client on its adapter's first call, an adapter's module by its factory); powertools' OpenAPI
    models (about 100 ms) only by building the document, which no request does."""
    found = _imports(function_dir, POWERTOOLS_TRACE_DISABLED="true")
    assert found["pending"]  # the service's models, imported and not built
    assert (found["built"], found["clients"], found["adapters"]) == ([], 0, [])
    assert found["openapi_models"] is False


@pytest.mark.parametrize("function_dir", FUNCTION_DIRS)
def test_a_handler_loads_with_the_collector_held_then_freezes_what_it_loaded(function_dir: str) -> None:
    """No collection walks the objects the handler's imports make while they load; once loaded
    they are frozen out of every later collection, and the collector runs again for the events."""
    found = _imports(function_dir, POWERTOOLS_TRACE_DISABLED="true")
    assert found["collections_while_loading"] == []
    assert found["gc_enabled"] is True
    assert int(found["frozen"]) > 50_000  # type: ignore[call-overload]


def test_before_the_snapshot_every_model_is_built_and_every_adapter_imported() -> None:
    found = _imports("manage_connections", "before-snapshot", POWERTOOLS_TRACE_DISABLED="true")
    assert found["pending"] == [] and "Connection" in list(found["built"])  # type: ignore[call-overload]
    assert found["adapters"] == sorted(ADAPTER_MODULES) and found["clients"] == 0
    assert found["idna"] is True  # urllib3's first connection needs the codec
    # Loaded as the handler's module was: no collection meanwhile, then frozen.
    assert found["collections_while_warming"] == [] and found["gc_enabled"] is True


def test_tracing_on_in_lambda_is_powertools_xray_provider() -> None:
    found = _imports("record_outcome", LAMBDA_TASK_ROOT=str(FUNCTIONS / "record_outcome"))
    assert found["xray"] is True and str(found["provider"]).endswith("AWSXRayRecorder")
