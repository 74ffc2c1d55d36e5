"""Lambda SnapStart (template.yaml: ``SnapStart: ApplyOn: PublishedVersions``): what a function
does before its snapshot, and what it refreshes after a restore.

Before the snapshot every module the first event needs is imported (the handler's own imports,
and every adapter, which ``wiring`` otherwise imports on first use), every model is built
(outside SnapStart a model's validator is built on its first use: ``domain.fields.Model``), and
the AWS SDK has loaded the service models its clients need (``clients``: a client is made, which
reads and caches the models, then dropped). After a restore the composition root forgets every
adapter and client: nothing built before the snapshot (a connection pool, credentials, anything
unique) is used by a restored environment; each is made again on first use, from the restored
environment, with the models already in memory.

Outside SnapStart (the local stack, tests) the runtime module ``snapshot_restore_py`` is absent
and ``prepare`` does nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from account_connections import adapters, wiring
from account_connections.adapters.clients import client
from account_connections.domain.fields import Model
from account_connections.startup import loading


def build_models() -> int:
    """Build every model class defined so far whose build was deferred; returns how many."""
    built = 0
    pending: list[type[Model]] = [Model]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_complete__:
            model.model_rebuild()
            built += 1
    return built


def import_all(package: ModuleType) -> None:
    """Import every module of ``package`` (a folder of the layer), below it too."""
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)


def build_everything() -> int:
    """Import every module of the package and build every model; returns how many were built.

    For a host that runs handlers on several threads at once (the tests, the bench's in-process
    sections): pydantic's deferred build is not thread-safe (pydantic issue 13419: two threads
    building one model at once can see it half built). A function never races itself: Lambda
    gives it one event at a time, and SnapStart builds every model before the snapshot."""
    import account_connections

    import_all(account_connections)
    return build_models()


def warm(clients: Iterable[str]) -> None:
    """Import every adapter and build every model; load each service's models into the SDK's
    caches, keeping no client; and load the IDNA codec, which urllib3 imports on a process's first
    connection (``host.encode("idna")``, with ``stringprep``). All of it loaded as the handler's
    module was (``startup.loading``: the collector held, then what was loaded frozen)."""
    with loading():
        import_all(adapters)
        build_models()
        "".encode("idna")
        for service in clients:
            client(service)
        forget()


def forget() -> None:
    """Drop every client and adapter: the next use makes them anew."""
    client.cache_clear()
    wiring.reset()


def prepare(clients: Iterable[str]) -> bool:
    """Register the hooks (True), or do nothing outside SnapStart (False)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    services = tuple(clients)
    register_before_snapshot(lambda: warm(services))
    register_after_restore(forget)
    return True
