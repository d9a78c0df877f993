"""What the delivery tests share: a receiver we control, small test
integrations, and a harness around the real Deliverer, store and metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import orjson
from aiohttp import web

from wazuh_integrator.classify import classify_exception, classify_status
from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.delivery import Deliverer, Delivery
from wazuh_integrator.errors import DeliveryError
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


# -- helpers -------------------------------------------------------


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
