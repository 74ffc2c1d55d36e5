"""A function's process as it loads: what each handler module does first and last.

First, before any import: ``gc.disable()``. Loading boto3, powertools, pydantic and this package
allocates a few hundred thousand objects that live as long as the process, and Python's cyclic
collector, counting allocations, walks them again and again while they load (each collection
of the oldest generation walks all of them).

Last, ``loaded()``: what was loaded is frozen (``gc.freeze``: moved to a permanent generation no
collection walks, Python's documented pattern for a process loaded once that then serves), the
collector is enabled again for what the events allocate, and SnapStart's hooks are registered.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

from account_connections.snapstart import prepare


def loaded(clients: Iterable[str]) -> None:
    """The handler's module is loaded: ``clients`` are the services whose SDK models SnapStart
    loads before its snapshot (no client is kept)."""
    prepare(clients)
    gc.freeze()
    gc.enable()
