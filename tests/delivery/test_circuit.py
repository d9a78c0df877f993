"""The circuit: opening, probing at most PROBE_CAP_S apart, closing, the backlog.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import asyncio
import random
import time

import orjson
import pytest
from tests.delivery.support import Answer, Harness, PostIntegration, Receiver, submit_all, until

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.delivery.circuit import Circuit


async def test_a_failing_receiver_opens_the_circuit_and_later_gets_everything(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(503)
    settings = IntegrationSettings(concurrency=1, initial_backoff_s=0.05, max_backoff_s=0.2)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, retries=0, circuit_threshold=3
    )
    await deliverer.start()
    await submit_all(deliverer, harness, range(20))
    await deliverer.join()
    assert len(harness.settled) == 20
    # Most alerts were parked untried instead of each hitting the dead receiver.
    assert receiver.attempts < 10
    assert harness.store.count_parked(deliverer.key) == 20
    assert deliverer.stats()["circuit_open"] == 1
    receiver.default = Answer(200)
    await until(lambda: len(receiver.accepted) == 20, "every parked alert delivered")
    assert sorted(receiver.accepted) == sorted(f"1764262800.{n}" for n in range(20))
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "the store drained")
    assert deliverer.stats()["circuit_open"] == 0
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(20)}


@pytest.mark.parametrize(
    ("threshold", "failures", "is_open"),
    [(1, 0, False), (1, 1, True), (5, 4, False), (5, 5, True), (5, 9, True)],
)
def test_the_circuit_opens_after_the_threshold(
    threshold: int, failures: int, is_open: bool
) -> None:
    circuit = Circuit(threshold, initial_s=1.0, max_s=60.0, rng=random.Random(3))
    opened = [circuit.record_failure(now=100.0) for _ in range(failures)]
    assert circuit.is_open is is_open
    assert opened.count(True) == (1 if is_open else 0)
    if is_open:
        assert 100.5 <= circuit.next_probe_at <= 101.0
    assert circuit.record_success() is is_open
    assert not circuit.is_open


async def test_after_an_outage_the_first_delivery_comes_within_one_probe_interval(
    harness: Harness, receiver: Receiver
) -> None:
    # 32 sends in flight when the receiver starts failing: most of their failures
    # arrive after the circuit opened, and must not count as failed probes.
    receiver.default = Answer(500, delay_s=0.05)
    settings = IntegrationSettings(concurrency=32, initial_backoff_s=0.05, max_backoff_s=300.0)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, retries=0, probe_cap_s=0.5
    )
    await deliverer.start()
    await submit_all(deliverer, harness, range(200))
    await deliverer.join()
    assert deliverer.stats()["circuit_open"] == 1
    await asyncio.sleep(1.0)  # the outage goes on for a while
    receiver.default = Answer(200)
    recovered_at = time.monotonic()
    await until(lambda: bool(receiver.accepted), "a first delivery after recovery")
    assert receiver.accepted_times[0] - recovered_at < 2.0
    await until(lambda: len(set(receiver.accepted)) == 200, "the whole backlog", timeout_s=15)
    assert deliverer.stats()["circuit_open"] == 0


async def test_closing_the_circuit_brings_the_whole_backlog_forward(
    harness: Harness, receiver: Receiver
) -> None:
    settings = IntegrationSettings(concurrency=4, initial_backoff_s=0.05, max_backoff_s=300.0)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, retries=0, probe_cap_s=0.3
    )
    now = time.time()
    # Parked earlier after several failures: their own backoff put them far ahead.
    for number in range(100, 110):
        harness.store.park(
            deliverer.key,
            orjson.dumps({"id": f"1764262800.{number}"}),
            attempts=6,
            first_failed_at=now - 60,
            next_attempt_at=now + 3600,
            last_error="HTTP 500",
        )
    receiver.default = Answer(503)
    await deliverer.start()
    await submit_all(deliverer, harness, range(20))
    await deliverer.join()
    assert deliverer.stats()["circuit_open"] == 1
    receiver.default = Answer(200)
    await until(lambda: len(set(receiver.accepted)) == 30, "new and old parked alerts")
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "an empty store")


def test_failures_of_sends_in_flight_when_the_circuit_opened_do_not_push_the_probe() -> None:
    circuit = Circuit(5, initial_s=1.0, max_s=300.0, rng=random.Random(7), probe_cap_s=5.0)
    for _ in range(5):
        circuit.record_failure(now=0.0)
    first_probe_at = circuit.next_probe_at
    assert 0.5 <= first_probe_at <= 1.0
    for _ in range(27):  # the other sends that were in flight
        circuit.record_failure(now=0.1)
    assert circuit.next_probe_at == first_probe_at
    assert circuit.failed_probes == 0


def test_failed_probes_space_out_up_to_the_probe_cap_far_below_max_backoff() -> None:
    circuit = Circuit(1, initial_s=1.0, max_s=300.0, rng=random.Random(5), probe_cap_s=5.0)
    circuit.record_failure(now=0.0)
    waits = []
    for probe in range(1, 40):
        now = float(probe * 100)
        circuit.record_failure(now=now, probe=True)
        waits.append(circuit.next_probe_at - now)
    assert all(0.5 <= wait <= 5.0 for wait in waits)
    assert max(waits) > 2.5  # it did grow
