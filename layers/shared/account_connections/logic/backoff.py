"""The pause between two attempts of a change that lost a race to another writer.

Many writers contending on one item (twenty operators giving twenty accounts to one address at
once) each lose again and again when they all read and write again at once: a short pause, of a
random length on an exponentially growing bound ("full jitter"), spreads them out so that the
contention settles within the attempts instead of reaching the caller as a 409.

``sleep`` and ``jitter`` are this module's, so that tests replace them (no real pause, or a
chosen one).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

# The bound of the first pause, and of the longest. A registry change makes at most twenty
# attempts (``logic.registry.MAX_ATTEMPTS``): its pauses add up to at most 3.6 s (1.8 s expected),
# twice that for a registration whose write and subscription sync both keep losing, within the
# API's 15 s function timeout (and API Gateway's 30 s).
BASE_SECONDS = 0.005
CAP_SECONDS = 0.25

sleep: Callable[[float], None] = time.sleep
jitter: Callable[[float, float], float] = random.uniform


def bound(lost: int) -> float:
    """The longest pause after the ``lost``-th lost race in a row (1, 2, ...)."""
    return min(CAP_SECONDS, BASE_SECONDS * 2 ** (lost - 1))


def pause(lost: int) -> None:
    """Wait a random time up to ``bound(lost)`` after the ``lost``-th lost race in a row."""
    sleep(jitter(0, bound(lost)))


def attempts(count: int) -> Iterator[int]:
    """The attempts of a change that may lose a race, numbered from 0, the pause
    (``pause(attempt)``) before each but the first: ``for attempt in attempts(N): ...``."""
    for attempt in range(count):
        if attempt:
            pause(attempt)
        yield attempt
