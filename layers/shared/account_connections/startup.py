"""A function's process as it loads: what each handler module does first and last.

First, before any import: ``gc.disable()``. Loading boto3, powertools, pydantic and this package
allocates a few hundred thousand objects that live as long as the process, and Python's cyclic
collector, counting allocations, walks them again and again while they load (each collection
of the oldest generation walks all of them).

Last, ``loaded()``: what was loaded is frozen (``gc.freeze``: moved to a permanent generation no
collection walks, Python's documented pattern for a process loaded once that then serves), the
collector is enabled again for what the events allocate.

Later, ``loading()``: the same for what a process loads on its first event and keeps, a service's
first client (the SDK reads the service's models then: ``adapters/clients.py``).

A frozen object is never collected: a cycle made while loading that later becomes garbage stays.
Loading makes few, once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def loaded() -> None:
    """The handler's module has loaded what it needs (called once its app and SnapStart's hooks
    are set): freeze what it loaded, and collect again what the events allocate."""
    gc.freeze()
    gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    """Hold the collector while what is made inside lives as long as the process (an SDK client's
    service models, made on the first event that needs them), then freeze it with the rest."""
    if not gc.isenabled():  # the handler's module is still loading: it freezes all of it at the end
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        loaded()
