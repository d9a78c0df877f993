from __future__ import annotations

import math
import random

import pytest

from wazuh_integrator.backoff import MAX_RETRY_AFTER_S, backoff_s, retry_wait_s


class _FixedRandom(random.Random):
    """A random source that always draws the same fraction of the range."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


@pytest.mark.parametrize(
    ("attempt", "initial_s", "max_s", "ceiling"),
    [
        (1, 1.0, 300.0, 1.0),
        (2, 1.0, 300.0, 2.0),
        (3, 1.0, 300.0, 4.0),
        (5, 1.0, 300.0, 16.0),
        (9, 1.0, 300.0, 256.0),
        (10, 1.0, 300.0, 300.0),
        (1, 0.5, 30.0, 0.5),
        (4, 0.5, 30.0, 4.0),
        (7, 0.5, 30.0, 30.0),
        (3, 2.0, 5.0, 5.0),
        (10_000, 1.0, 300.0, 300.0),
        (3, 0.0, 300.0, 0.0),
    ],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(
    attempt: int, initial_s: float, max_s: float, ceiling: float
) -> None:
    highest = backoff_s(attempt, initial_s=initial_s, max_s=max_s, rng=_FixedRandom(1.0))
    lowest = backoff_s(attempt, initial_s=initial_s, max_s=max_s, rng=_FixedRandom(0.0))
    middle = backoff_s(attempt, initial_s=initial_s, max_s=max_s, rng=_FixedRandom(0.5))
    assert highest == pytest.approx(ceiling)
    assert lowest == 0.0
    assert middle == pytest.approx(ceiling / 2)


def test_a_seeded_source_gives_the_same_schedule_every_time() -> None:
    rng = random.Random(7)
    schedule = [backoff_s(a, initial_s=1.0, max_s=30.0, rng=rng) for a in range(1, 8)]
    assert schedule == pytest.approx(
        [0.323833, 0.301698, 2.603738, 0.57949, 8.574112, 10.970668, 1.739968], abs=1e-6
    )


def test_full_jitter_spreads_waits_over_the_whole_range() -> None:
    rng = random.Random(1)
    waits = [backoff_s(4, initial_s=1.0, max_s=300.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert min(waits) < 0.5
    assert max(waits) > 7.5


@pytest.mark.parametrize(
    ("attempt", "initial_s", "max_s"),
    [(0, 1.0, 10.0), (-1, 1.0, 10.0), (1, -1.0, 10.0), (1, 1.0, -10.0)],
)
def test_nonsense_arguments_are_refused(attempt: int, initial_s: float, max_s: float) -> None:
    with pytest.raises(ValueError):
        backoff_s(attempt, initial_s=initial_s, max_s=max_s, rng=random.Random(0))


@pytest.mark.parametrize(
    ("backoff", "retry_after_s", "expected"),
    [
        (3.0, None, 3.0),
        (3.0, 10.0, 10.0),
        (3.0, 1.0, 3.0),
        (3.0, 0.0, 3.0),
        (0.2, 2.0, 2.0),
        (3.0, -5.0, 3.0),
        (3.0, math.nan, 3.0),
        (3.0, math.inf, 3.0),
        (3.0, 10 * MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S),
    ],
)
def test_retry_after_is_a_floor_with_a_sane_cap(
    backoff: float, retry_after_s: float | None, expected: float
) -> None:
    assert retry_wait_s(backoff, retry_after_s) == expected


def test_the_retry_after_cap_can_be_lowered() -> None:
    assert retry_wait_s(1.0, 120.0, max_retry_after_s=60.0) == 60.0
