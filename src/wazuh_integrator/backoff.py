"""How long to wait before trying a failed delivery again.

Pure functions of the attempt number, the policy and a random source, so that
the retry schedule can be tested as a table with a seeded :class:`random.Random`.
"""

from __future__ import annotations

import math
import random

__all__ = ["MAX_RETRY_AFTER_S", "backoff_s", "retry_wait_s"]

# A receiver's Retry-After is obeyed up to a day: VirusTotal's daily quota is
# the longest wait a real service asks for, and a larger value is more likely
# a bug on its side than a reason to hold a delivery for a week.
MAX_RETRY_AFTER_S = 24 * 3600.0

# 2**64 seconds is far past any cap; stopping the exponent there keeps the
# float arithmetic finite for absurd attempt numbers.
_MAX_EXPONENT = 64


def backoff_s(attempt: int, *, initial_s: float, max_s: float, rng: random.Random) -> float:
    """The wait after failed attempt number ``attempt`` (1 for the first failure).

    Exponential with full jitter: a uniform draw in ``[0, min(max_s,
    initial_s * 2 ** (attempt - 1))]``. Full jitter spreads the retries of
    many deliveries that failed together, so a receiver that comes back is
    not hit by all of them in the same second.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, not {attempt}")
    if initial_s < 0 or max_s < 0:
        raise ValueError("backoff times must not be negative")
    ceiling = min(max_s, initial_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


def retry_wait_s(
    backoff: float, retry_after_s: float | None, *, max_retry_after_s: float = MAX_RETRY_AFTER_S
) -> float:
    """The wait before the next attempt when the receiver may have said Retry-After.

    A usable Retry-After (finite, not negative) is a floor: we never come back
    sooner than the receiver asked, but never later than ``max_retry_after_s``
    because of it. Without one, the backoff stands.
    """
    if retry_after_s is None or not math.isfinite(retry_after_s) or retry_after_s < 0:
        return backoff
    return max(backoff, min(retry_after_s, max_retry_after_s))
