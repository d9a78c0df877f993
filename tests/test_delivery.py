"""The delivery layer against real local receivers and a real state store.

The integrations here are small test integrations (one POSTs each alert to a
local aiohttp server, one runs a scripted list of outcomes); the deliverer,
the store, the metrics and the classifier are the real ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson
import pytest
from aiohttp import web

from wazuh_integrator.classify import classify_exception, classify_status
from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings, RateLimit
from wazuh_integrator.delivery import Deliverer, Delivery
from wazuh_integrator.delivery.circuit import Circuit
from wazuh_integrator.errors import DeliveryError, Permanent, Transient
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.metrics import Metrics
from wazuh_integrator.secret import Secret
from wazuh_integrator.store import StateStore

TOKEN = "tok-7f3a9c-secret"
HOOK_PATH = f"/hook/{TOKEN}"
FAST = IntegrationSettings(initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_age_s=3600.0)


# -- a receiver we control ---------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    body: bytes = b"ok"
    delay_s: float = 0.0


class Receiver:
    """A local HTTP server answering each POST with the next scripted answer,
    then with ``default``; records what it accepted."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.default = Answer()
        self.attempts = 0
        self.attempt_times: list[float] = []
        self.accepted: list[str] = []
        self.accepted_times: list[float] = []
        self.released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        answer = self.script.pop(0) if self.script else self.default
        if answer.hang:
            await self.released.wait()
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if 200 <= answer.status <= 299:
            self.accepted.append(orjson.loads(body)["id"])
            self.accepted_times.append(time.monotonic())
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)


# -- test integrations --------------------------------------------------------


class PostIntegration(Integration):
    """POSTs the alert as JSON to the block's hook_url, classified like the real ones."""

    name = "custom-post"

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self.gave_up: list[tuple[str, DeliveryError]] = []

    async def send(self, alert: Alert) -> None:
        assert self.block.hook_url is not None
        # timeout 0 means none of our own: the deliverer's safety time-out must act.
        timeout = aiohttp.ClientTimeout(total=self.block.timeout_s or None)
        try:
            async with self.context.session().post(
                self.block.hook_url.reveal(), json=alert, timeout=timeout
            ) as answer:
                body = await answer.read()
                error = classify_status(
                    answer.status, retry_after=answer.headers.get("Retry-After"), body=body
                )
        except (aiohttp.ClientError, OSError) as exc:
            raise classify_exception(exc) from exc
        if error is not None:
            raise error

    async def on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        self.gave_up.append((alert["id"], error))


class NoRetryPostIntegration(PostIntegration):
    retry_by_default: ClassVar[bool] = False


class ScriptedIntegration(Integration):
    """Raises the next scripted exception for each attempt (None: success)."""

    name = "custom-scripted"
    default_concurrency: ClassVar[int] = 1

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self.outcomes: list[BaseException | None] = []
        self.sent: list[str] = []
        self.gave_up: list[str] = []

    async def send(self, alert: Alert) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.sent.append(alert["id"])

    async def on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        self.gave_up.append(alert["id"])
        raise RuntimeError(f"the give-up step broke too {TOKEN}")


# -- fixtures and helpers -------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as state:
        yield state


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@dataclass
class Harness:
    tmp_path: Path
    http: aiohttp.ClientSession
    store: StateStore
    metrics: Metrics
    deliverers: list[Deliverer] = field(default_factory=list)
    settled: Counter[str] = field(default_factory=Counter)

    def make(
        self,
        cls: type[Integration],
        *,
        url: str = "http://127.0.0.1:9/unused",
        settings: IntegrationSettings = FAST,
        retries: int = 3,
        timeout_s: int = 5,
        index: int = 0,
        **kwargs: Any,
    ) -> Deliverer:
        block = IntegrationBlock(
            index=index,
            path="ossec.conf",
            line=1,
            name=cls.name,
            hook_url=Secret(url),
            api_key=Secret(TOKEN),
            retries=retries,
            timeout_s=timeout_s,
        )
        context = IntegrationContext(
            home=self.tmp_path, state_dir=self.tmp_path, settings=settings, http=self.http
        )
        self.metrics.register_integration(block.key)
        deliverer = Deliverer(
            cls(block, context),
            key=block.key,
            settings=settings,
            store=self.store,
            metrics=self.metrics,
            **kwargs,
        )
        self.deliverers.append(deliverer)
        return deliverer

    def delivery(self, number: int) -> Delivery:
        alert = {"id": f"1764262800.{number}", "rule": {"level": 10}}
        alert_id = alert["id"]

        def settle() -> None:
            self.settled[alert_id] += 1

        return Delivery(alert=alert, raw=orjson.dumps(alert), on_settled=settle)

    def outcome(self, deliverer: Deliverer, outcome: str) -> float:
        return self.metrics.deliveries_total.labels(
            integration=deliverer.key, outcome=outcome
        ).value


@pytest.fixture
async def harness(
    tmp_path: Path, http: aiohttp.ClientSession, store: StateStore, metrics: Metrics
) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, http, store, metrics)
    yield h
    for deliverer in h.deliverers:
        await deliverer.stop(0.0)


async def until(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def submit_all(deliverer: Deliverer, harness: Harness, numbers: range) -> None:
    for number in numbers:
        await deliverer.submit(harness.delivery(number))


def parked_rows(store: StateStore, key: str) -> list[Any]:
    return store.due_parked(key, float("inf"), 1000)


# -- the tests ------------------------------------------------------------------


async def test_deliveries_arrive_and_settle_once(harness: Harness, receiver: Receiver) -> None:
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await submit_all(deliverer, harness, range(5))
    await deliverer.join()
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(5)]
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(5)}
    assert deliverer.stats()["delivered_total"] == 5
    assert harness.outcome(deliverer, "delivered") == 5
    attempts = harness.metrics.delivery_attempts_total.labels(integration=deliverer.key)
    assert attempts.value == 5
    assert harness.metrics.delivery_seconds.labels(integration=deliverer.key).count == 5


async def test_a_quick_retry_delivers_after_server_errors(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.script = [Answer(500), Answer(502)]
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=3)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.accepted == ["1764262800.0"]
    assert receiver.attempts == 3
    assert harness.outcome(deliverer, "retried") == 2
    assert harness.store.count_parked(deliverer.key) == 0
    assert harness.settled == {"1764262800.0": 1}


@pytest.mark.parametrize("retries", [0, 3])
async def test_429_with_retry_after_is_waited_out_then_delivered(
    harness: Harness, receiver: Receiver, retries: int
) -> None:
    receiver.script = [Answer(429, {"Retry-After": "1"})]
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=retries)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.accepted == ["1764262800.0"]
    assert receiver.attempts == 2
    assert receiver.attempt_times[1] - receiver.attempt_times[0] >= 1.0
    assert harness.store.count_parked(deliverer.key) == 0
    assert harness.metrics.rate_limited_total.labels(integration=deliverer.key).value >= 1


async def test_429_pauses_the_whole_integration(harness: Harness, receiver: Receiver) -> None:
    receiver.script = [Answer(429, {"Retry-After": "1"})]
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the 429")
    told_at = receiver.attempt_times[0]
    await deliverer.submit(harness.delivery(1))
    await deliverer.join()
    assert sorted(receiver.accepted) == ["1764262800.0", "1764262800.1"]
    # The other delivery, with a worker free, still waited for the pause to end.
    assert min(receiver.attempt_times[1:]) - told_at >= 1.0


async def test_a_long_retry_after_parks_instead_of_holding_workers(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.script = [Answer(429, {"Retry-After": "600"})]
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    await deliverer.submit(harness.delivery(1))
    await deliverer.join()
    rows = parked_rows(harness.store, deliverer.key)
    assert receiver.attempts == 1
    assert [orjson.loads(row.alert)["id"] for row in rows] == ["1764262800.0", "1764262800.1"]
    first, second = rows
    assert first.attempts == 1 and "HTTP 429" in first.last_error
    assert first.next_attempt_at - first.first_failed_at >= 599
    assert second.attempts == 0 and "rate limit" in second.last_error
    assert harness.settled == {"1764262800.0": 1, "1764262800.1": 1}


async def test_a_permanent_failure_is_dead_lettered_once(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(400, body=b'{"error": "invalid_payload"}')
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert receiver.attempts == 1
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 400
    assert letter.attempts == 1
    assert letter.integration_name == "custom-post"
    assert "HTTP 400" in letter.last_error and "invalid_payload" in letter.last_error
    assert orjson.loads(letter.alert)["id"] == "1764262800.0"
    integration = deliverer.integration
    assert isinstance(integration, PostIntegration)
    # The delivery is settled once stored; its give-up step runs just after.
    await until(lambda: bool(integration.gave_up), "the give-up step")
    assert [(alert_id, err.status) for alert_id, err in integration.gave_up] == [
        ("1764262800.0", 400)
    ]
    assert harness.settled == {"1764262800.0": 1}
    assert harness.metrics.dead_letters.labels(integration=deliverer.key).value == 1
    assert harness.outcome(deliverer, "dead_lettered") == 1


async def test_the_stored_error_is_cut_to_one_kib(harness: Harness, receiver: Receiver) -> None:
    receiver.default = Answer(422, body=b"x" * 5000)
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert 0 < len(letter.last_error.encode()) <= 1024


async def test_retries_exhausted_park_then_the_store_retry_delivers(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(503)
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=1)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    # Settled by parking: the checkpoint may move on while the receiver is down.
    assert harness.settled == {"1764262800.0": 1}
    assert receiver.accepted == []
    assert receiver.attempts >= 2
    assert harness.store.count_parked(deliverer.key) == 1
    receiver.default = Answer(200)
    await until(lambda: receiver.accepted == ["1764262800.0"], "the parked retry")
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "the row removed")
    assert deliverer.stats()["parked"] == 0
    assert harness.outcome(deliverer, "parked") == 1
    assert harness.outcome(deliverer, "delivered") == 1
    assert harness.settled == {"1764262800.0": 1}


async def test_a_parked_delivery_older_than_max_retry_age_is_dead_lettered(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(503)
    settings = IntegrationSettings(initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_age_s=0.3)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, retries=0, circuit_threshold=1000
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: harness.store.count_dead_letters(deliverer.key) == 1, "the dead letter")
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 503
    assert letter.attempts >= 2
    assert harness.store.count_parked(deliverer.key) == 0
    integration = deliverer.integration
    assert isinstance(integration, PostIntegration)
    assert [alert_id for alert_id, _ in integration.gave_up] == ["1764262800.0"]
    assert harness.settled == {"1764262800.0": 1}


async def test_an_expired_delivery_is_dead_lettered_untried_while_the_circuit_is_open(
    harness: Harness, store: StateStore
) -> None:
    settings = IntegrationSettings(initial_backoff_s=0.2, max_backoff_s=0.5, max_retry_age_s=3600)
    deliverer = harness.make(ScriptedIntegration, settings=settings, circuit_threshold=1)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [Transient("HTTP 503") for _ in range(100)]
    await deliverer.start()
    # The first failure opens the circuit (threshold 1).
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    assert deliverer.stats()["circuit_open"] == 1
    now = time.time()
    store.park(
        deliverer.key,
        orjson.dumps({"id": "old", "rule": {"level": 3}}),
        attempts=7,
        first_failed_at=now - 7200,
        next_attempt_at=now,
        last_error="HTTP 503",
    )
    await until(lambda: store.count_dead_letters(deliverer.key) == 1, "the expired one")
    (letter,) = store.dead_letters(deliverer.key)
    assert orjson.loads(letter.alert)["id"] == "old"
    assert letter.status is None
    assert letter.attempts == 7
    assert "max_retry_age" in letter.last_error and "HTTP 503" in letter.last_error
    assert integration.gave_up == ["old"]
    assert integration.sent == []
    assert store.count_parked(deliverer.key) == 1


@pytest.mark.parametrize(
    ("cls", "retry", "dead_lettered"),
    [
        (PostIntegration, False, True),
        (NoRetryPostIntegration, None, True),
        (NoRetryPostIntegration, True, False),
        (PostIntegration, None, False),
    ],
)
async def test_with_retries_disabled_the_first_failure_is_final(
    harness: Harness,
    receiver: Receiver,
    cls: type[PostIntegration],
    retry: bool | None,
    dead_lettered: bool,
) -> None:
    receiver.script = [Answer(500)]
    settings = IntegrationSettings(initial_backoff_s=0.01, max_backoff_s=0.05, retry=retry)
    deliverer = harness.make(cls, url=receiver.url(), settings=settings)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    letters = harness.store.dead_letters(deliverer.key)
    if dead_lettered:
        assert receiver.attempts == 1
        assert [(letter.status, letter.attempts) for letter in letters] == [(500, 1)]
        assert receiver.accepted == []
    else:
        assert letters == []
        assert receiver.accepted == ["1764262800.0"]
    assert harness.settled == {"1764262800.0": 1}


async def test_stop_parks_queued_and_in_flight_deliveries(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, initial_backoff_s=0.01, max_backoff_s=0.05)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(3))
    await until(lambda: receiver.attempts == 1, "the first request in flight")
    await deliverer.stop(grace_s=0.1)
    rows = parked_rows(harness.store, deliverer.key)
    by_id = {orjson.loads(row.alert)["id"]: row for row in rows}
    assert sorted(by_id) == [f"1764262800.{n}" for n in range(3)]
    assert "interrupted by shutdown" in by_id["1764262800.0"].last_error
    assert "not attempted" in by_id["1764262800.2"].last_error
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(3)}
    assert deliverer.stats()["in_flight"] == 0
    # Handed over after the stop: parked, never lost.
    await deliverer.submit(harness.delivery(9))
    assert harness.settled["1764262800.9"] == 1
    assert harness.store.count_parked(deliverer.key) == 4


async def test_stop_lets_in_flight_deliveries_finish_within_the_grace(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the request in flight")
    stopping = asyncio.create_task(deliverer.stop(grace_s=30.0))
    await asyncio.sleep(0.05)
    receiver.released.set()
    await stopping
    assert receiver.accepted == ["1764262800.0"]
    assert harness.store.count_parked(deliverer.key) == 0


async def test_past_the_queue_deliveries_wait_in_the_overflow_then_in_the_store(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, queue_size=2)
    one_line = len(harness.delivery(0).raw)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), settings=settings, overflow_bytes=2 * one_line
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the worker busy")
    # The reader never waits: 2 fill the queue, 2 the overflow, and the
    # oldest overflow ones go to the store, untried, as more arrive.
    await submit_all(deliverer, harness, range(1, 8))
    assert deliverer.stats()["queued"] == 4
    spilled = parked_rows(harness.store, deliverer.key)
    assert sorted(orjson.loads(row.alert)["id"] for row in spilled) == [
        f"1764262800.{n}" for n in range(3, 6)
    ]
    assert all(row.attempts == 0 and "queue was full" in row.last_error for row in spilled)
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(3, 6)}
    assert harness.metrics.queue_depth.labels(integration=deliverer.key).value == 4
    receiver.released.set()
    await until(lambda: len(receiver.accepted) == 8, "every alert delivered")
    assert sorted(receiver.accepted) == [f"1764262800.{n}" for n in range(8)]
    await deliverer.join()
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(8)}
    await until(lambda: harness.store.count_parked(deliverer.key) == 0, "the store emptied")


async def test_stop_parks_what_waits_in_the_overflow(harness: Harness, receiver: Receiver) -> None:
    receiver.default = Answer(hang=True)
    settings = IntegrationSettings(concurrency=1, queue_size=1)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await until(lambda: receiver.attempts == 1, "the worker busy")
    await submit_all(deliverer, harness, range(1, 4))
    await deliverer.stop(grace_s=0.1)
    await asyncio.wait_for(deliverer.join(), 5)
    assert harness.settled == {f"1764262800.{n}": 1 for n in range(4)}
    rows = parked_rows(harness.store, deliverer.key)
    assert sorted(orjson.loads(row.alert)["id"] for row in rows) == [
        f"1764262800.{n}" for n in range(4)
    ]


async def test_a_slow_integration_does_not_slow_another(
    harness: Harness, receiver: Receiver
) -> None:
    fast_receiver = Receiver()
    await fast_receiver.start()
    try:
        receiver.default = Answer(hang=True)
        slow = harness.make(
            PostIntegration,
            url=receiver.url(),
            settings=IntegrationSettings(concurrency=1, queue_size=1),
            index=0,
        )
        fast = harness.make(PostIntegration, url=fast_receiver.url(), index=1)
        await slow.start()
        await fast.start()
        await submit_all(slow, harness, range(2))
        await submit_all(fast, harness, range(100, 150))
        await fast.join()
        assert len(fast_receiver.accepted) == 50
        assert receiver.accepted == []
        assert slow.stats()["in_flight"] == 1
    finally:
        await fast_receiver.stop()


async def test_the_safety_time_out_catches_a_hanging_integration(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.default = Answer(hang=True)
    deliverer = harness.make(
        PostIntegration, url=receiver.url(), timeout_s=0, retries=0, safety_margin_s=0.2
    )
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    (row,) = parked_rows(harness.store, deliverer.key)
    assert row.attempts == 1
    assert "no answer within 0.2 s" in row.last_error


async def test_an_unexpected_exception_is_logged_with_context_and_retried(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    deliverer = harness.make(ScriptedIntegration)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [KeyError(f"https://example.invalid/{TOKEN}")]
    await deliverer.start()
    with caplog.at_level(logging.WARNING):
        await deliverer.submit(harness.delivery(0))
        await deliverer.join()
    assert integration.sent == ["1764262800.0"]
    assert harness.outcome(deliverer, "retried") == 1
    (record,) = [r for r in caplog.records if "unexpected error on alert" in r.getMessage()]
    message = record.getMessage()
    assert deliverer.key in message
    assert "1764262800.0" in message
    assert "attempt 1" in message
    assert "KeyError" in message
    assert TOKEN not in caplog.text


async def test_no_secret_reaches_a_dead_letter_or_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    deliverer = harness.make(ScriptedIntegration)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [Permanent(f"HTTP 401: bad key {TOKEN}", status=401)]
    await deliverer.start()
    with caplog.at_level(logging.DEBUG):
        await deliverer.submit(harness.delivery(0))
        await deliverer.join()
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 401
    assert TOKEN not in letter.last_error
    assert "bad key" in letter.last_error
    # on_give_up was called once (just after the settling); that it raised is
    # logged, not fatal.
    await until(lambda: "give-up step failed" in caplog.text, "the give-up step's failure")
    assert integration.gave_up == ["1764262800.0"]
    assert TOKEN not in caplog.text


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


async def test_rows_parked_by_another_process_are_picked_up(
    harness: Harness, receiver: Receiver, tmp_path: Path
) -> None:
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await asyncio.sleep(0.05)
    # What `dead-letter replay` does: its own handle on the same database.
    with StateStore(tmp_path / "state.db") as other:
        now = time.time()
        other.park(
            deliverer.key,
            orjson.dumps({"id": "replayed"}),
            attempts=0,
            first_failed_at=now,
            next_attempt_at=now,
            last_error="replayed dead letter 1: HTTP 500",
        )
    await until(lambda: receiver.accepted == ["replayed"], "the replayed alert")


async def test_rate_limits_hold_across_deliveries(harness: Harness, receiver: Receiver) -> None:
    limit = RateLimit(2, 0.3)
    settings = IntegrationSettings(rate_limits=(limit,), concurrency=4)
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(5))
    await deliverer.join()
    times = sorted(receiver.attempt_times)
    assert len(times) == 5
    for i in range(len(times) - limit.count):
        assert times[i + limit.count] - times[i] >= limit.period_s * 0.9
    assert harness.metrics.rate_limited_total.labels(integration=deliverer.key).value >= 1


async def test_a_quota_spent_for_the_day_parks_new_alerts(
    harness: Harness, receiver: Receiver
) -> None:
    settings = IntegrationSettings(rate_limits=(RateLimit(1, 86400.0),))
    deliverer = harness.make(PostIntegration, url=receiver.url(), settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(2))
    await deliverer.join()
    assert receiver.attempts == 1
    (row,) = parked_rows(harness.store, deliverer.key)
    assert row.attempts == 0
    assert "rate limit" in row.last_error
    assert row.next_attempt_at - time.time() > 80000


class CachedAnswerIntegration(ScriptedIntegration):
    """Answers even-numbered alerts without calling its service, like a cached lookup."""

    def needs_request(self, alert: Alert) -> bool:
        return int(alert["id"].rsplit(".", 1)[1]) % 2 == 1


async def test_alerts_that_need_no_request_skip_the_rate_limit(harness: Harness) -> None:
    settings = IntegrationSettings(rate_limits=(RateLimit(1, 86400.0),))
    deliverer = harness.make(CachedAnswerIntegration, settings=settings)
    await deliverer.start()
    await submit_all(deliverer, harness, range(6))
    await deliverer.join()
    integration = deliverer.integration
    assert isinstance(integration, CachedAnswerIntegration)
    # One request fits the day's quota; the cached answers never wait for it.
    assert integration.sent == ["1764262800.0", "1764262800.1", "1764262800.2", "1764262800.4"]
    parked = sorted(
        orjson.loads(row.alert)["id"] for row in parked_rows(harness.store, deliverer.key)
    )
    assert parked == ["1764262800.3", "1764262800.5"]


async def test_join_with_nothing_submitted_returns(harness: Harness) -> None:
    deliverer = harness.make(ScriptedIntegration)
    await deliverer.start()
    await asyncio.wait_for(deliverer.join(), timeout=5)
    assert deliverer.stats()["delivered_total"] == 0


async def test_a_repeating_failure_is_logged_once(
    harness: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.default = Answer(500)
    deliverer = harness.make(PostIntegration, url=receiver.url(), retries=0, circuit_threshold=1000)
    await deliverer.start()
    with caplog.at_level(logging.INFO):
        await submit_all(deliverer, harness, range(20))
        await deliverer.join()
    parked_lines = [r for r in caplog.records if "parked for a later retry" in r.getMessage()]
    assert len(parked_lines) == 1
    assert harness.store.count_parked(deliverer.key) == 20
    assert TOKEN not in caplog.text


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
