"""moto's responses finding a request's handler method without listing their class's members.

moto 5.2.5's ``BaseResponse.call_action`` checks that the action (``transact_write_items``) is a
method of the response class with ``method_names_from_class(self.__class__)``, which is
``inspect.getmembers(clazz, inspect.isfunction)``: every attribute of the class and its bases
looked up, checked and sorted, for every request. Profiled after ``local.dynamodb_items``
(py-spy ``--gil``, 50 concurrent requesters; docs/local-stack.md, "Under load"), that was about
2.4% of the stack process's GIL time. A response class's methods do not change while the stack
runs (nothing adds methods to them), so the names are listed once per class and the same
answer (a tuple: ``call_action`` only asks whether the action is among them) given after.
"""

from __future__ import annotations

import functools

from moto.core import responses, utils

_original = utils.method_names_from_class


@functools.cache
def _names(clazz: type) -> tuple[str, ...]:
    return tuple(_original(clazz))


def method_names_from_class(clazz: object) -> tuple[str, ...]:
    """The names of ``clazz``'s functions (its methods), listed once per class."""
    return _names(clazz)  # type: ignore[arg-type]


def install() -> None:
    """Patch moto's responses module in this process (idempotent): ``call_action`` calls the name
    it imported, ``responses.method_names_from_class``."""
    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]
