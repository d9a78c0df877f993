"""The retry schedule alone: quick waits capped, parked waits up to max_backoff."""

from __future__ import annotations

import random

import pytest

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.delivery.model import decode_raw
from wazuh_integrator.delivery.schedule import QUICK_BACKOFF_CAP_S, RetrySchedule


@pytest.mark.parametrize("max_backoff_s", [5.0, 300.0])
def test_quick_waits_stay_under_the_quick_cap_and_max_backoff(max_backoff_s: float) -> None:
    settings = IntegrationSettings(initial_backoff_s=1.0, max_backoff_s=max_backoff_s)
    schedule = RetrySchedule(settings, random.Random(1))
    waits = [schedule.quick_s(retry) for retry in range(1, 30) for _ in range(20)]
    assert max(waits) <= min(max_backoff_s, QUICK_BACKOFF_CAP_S)
    assert max(waits) > min(max_backoff_s, QUICK_BACKOFF_CAP_S) / 2  # it does grow


def test_parked_waits_grow_to_max_backoff() -> None:
    settings = IntegrationSettings(initial_backoff_s=1.0, max_backoff_s=300.0)
    schedule = RetrySchedule(settings, random.Random(2))
    waits = [schedule.parked_s(attempts) for attempts in range(0, 30) for _ in range(20)]
    assert min(waits) >= 0.0 and max(waits) <= 300.0
    assert max(waits) > QUICK_BACKOFF_CAP_S


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b'{"id": "1"}', {"id": "1"}), (b"[1, 2]", None), (b"{broken", None), (b"", None)],
)
def test_a_raw_line_decodes_to_an_object_or_none(raw: bytes, expected: object) -> None:
    assert decode_raw(raw) == expected
