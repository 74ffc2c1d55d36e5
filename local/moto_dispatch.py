"""moto's server, dispatching a request without listing moto's package folder.

moto 5.2.5's ``DomainDispatcherApplication.get_backend_for_host`` asks, for every request,
whether the host names one of moto's service modules with ``backends.list_of_moto_modules()``:
an ``os.listdir`` of moto's package folder (about 200 entries) and an ``os.path.isdir`` for each
entry until the service's name comes. Under 20 concurrent creates that was about 18% of the
stack process's busy time. The folder does not change while the process runs, so here it is
listed once and the same names are answered after.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from moto import backends

_original = backends.list_of_moto_modules


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    return tuple(_original())


def list_of_moto_modules() -> Iterable[str]:
    """moto's service module names (its package's folders), listed once per process."""
    return _moto_modules()


def install() -> None:
    """Patch moto's backends module in this process (idempotent): the dispatcher calls it as
    ``backends.list_of_moto_modules()``, so it gets the cached names."""
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]
