"""Logger, Tracer and Metrics shared by every function (service name from the environment).

When tracing is off (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda: the local stack, tests,
the bench), the Tracer gets a provider that does nothing, so that the X-Ray SDK is never imported:
powertools' default provider imports ``aws_xray_sdk.core`` (about 110 ms, and wrapt) even for a
disabled Tracer. With tracing on (every deployed function: ``Tracing: Active``) it is powertools'
own X-Ray provider, unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

_TRUE = {"1", "true", "yes", "on", "y", "t"}


class _NoSegment(BaseSegment):
    """A subsegment that records nothing."""

    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        return None


class UntracedProvider(BaseProvider):
    """The Tracer's provider when tracing is off: every call a no-op, no X-Ray SDK."""

    @contextlib.contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @contextlib.asynccontextmanager
    async def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None


def tracing_disabled() -> bool:
    """As powertools decides it: the variable says so, or the process is not in Lambda."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return True
    return not os.environ.get("LAMBDA_TASK_ROOT") or bool(os.environ.get("AWS_SAM_LOCAL"))


def _tracer() -> Tracer:
    if tracing_disabled():
        return Tracer(provider=UntracedProvider(), disabled=True, auto_patch=False)
    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()
