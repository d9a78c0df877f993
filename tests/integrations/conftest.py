"""Fixtures for integration tests: a real HTTP receiver on 127.0.0.1, a client
session, blocks and contexts, and the shared tables that several integration
test modules run against (the retry table, the failure modes)."""

from __future__ import annotations

import asyncio
import socket
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from enrich_support import DatagramReceiver, FakeService, analysisd_receiver
from tests.integrations.transport_support import ready_session

from wazuh_integrator.analysisd import AnalysisdSocket
from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout, Transient
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.sessions import HttpSessions
from wazuh_integrator.integrations.transport import processes_for
from wazuh_integrator.store import StateStore

GOLDEN_ROOT = Path(__file__).resolve().parent.parent / "data" / "golden"

# Status -> the DeliveryError type an integration must raise (None: delivered).
RETRY_TABLE: list[tuple[int, type[DeliveryError] | None]] = [
    (200, None),
    (202, None),
    (204, None),
    (301, Permanent),
    (400, Permanent),
    (401, Permanent),
    (403, Permanent),
    (404, Permanent),
    (408, Transient),
    (413, Permanent),
    (422, Permanent),
    (429, RateLimited),
    (500, Transient),
    (502, Transient),
    (503, RateLimited),
    (504, Transient),
]

# Every way a delivery can fail that the secret-leak tests force, and the
# error type each must raise. The time-out mode needs a block with timeout_s=1.
FAILURE_MODES: dict[str, type[DeliveryError]] = {
    "connection-refused": Transient,
    "http-500": Transient,
    "http-400-echo": Permanent,
    "time-out": Timeout,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "status_outcome" in metafunc.fixturenames:
        metafunc.parametrize("status_outcome", RETRY_TABLE, ids=[str(s) for s, _ in RETRY_TABLE])
    if "failure_mode" in metafunc.fixturenames:
        metafunc.parametrize("failure_mode", list(FAILURE_MODES))
    if "golden_case" in metafunc.fixturenames:
        # A test module names its folder under tests/data/golden/ in GOLDEN_INTEGRATION.
        cases = load_golden_cases(metafunc.module.GOLDEN_INTEGRATION)
        assert cases, "no golden cases found"
        metafunc.parametrize("golden_case", cases, ids=[case.name for case in cases])


@dataclass
class Recorded:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    echo: bool = False  # answer with everything the request carried
    hang: bool = False  # never answer (until the test ends)


class Receiver:
    """A real aiohttp server that records each request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.reply = Reply()
        self.released = asyncio.Event()
        self.base_url = ""

    def url(self, path: str = "/") -> str:
        return f"{self.base_url}{path}"

    def answer(
        self,
        status: int = 200,
        body: bytes = b"ok",
        headers: dict[str, str] | None = None,
        *,
        echo: bool = False,
        hang: bool = False,
    ) -> None:
        """How to answer the next requests."""
        self.reply = Reply(status, body, headers or {}, echo=echo, hang=hang)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers), body))
        reply = self.reply
        if reply.hang:
            # Bounded so that a broken test cannot keep the server busy forever.
            await asyncio.wait_for(self.released.wait(), timeout=10)
        payload = reply.body
        if reply.echo:
            payload = (
                f"bad request to {request.url} path {request.path_qs} "
                f"auth {request.headers.get('Authorization')} body "
            ).encode() + body
        return web.Response(status=reply.status, body=payload, headers=reply.headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    # No access log: it would record the secret paths the tests send, as the
    # receiver, not as our code.
    runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.released.set()
        await runner.cleanup()


@pytest.fixture
def refused_base_url() -> str:
    """A loopback address where nothing listens: bind a port, then free it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(params=["http1", "aiohttp"])
async def session(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    """The daemon's session (webhooks go through its lean HTTP/1.1 pool), and
    a plain aiohttp one: every test runs on both ways of sending."""
    if request.param == "aiohttp":
        async with aiohttp.ClientSession() as client:
            yield client
        return
    # As the daemon by default: in an HTTP transport process when there are 2 CPUs.
    async with HttpSessions(processes_for(None)) as sessions:
        yield await ready_session(sessions)


@pytest.fixture
def failing_base_url(failure_mode: str, receiver: Receiver, refused_base_url: str) -> str:
    """The base URL of a receiver that fails in ``failure_mode``."""
    if failure_mode == "connection-refused":
        return refused_base_url
    receiver.reply = {
        "http-500": Reply(status=500, echo=True),
        "http-400-echo": Reply(status=400, echo=True),
        "time-out": Reply(hang=True),
    }[failure_mode]
    return receiver.base_url


@pytest.fixture
def expected_failure(failure_mode: str) -> type[DeliveryError]:
    return FAILURE_MODES[failure_mode]


LeakCheck = Callable[[BaseException, list[str]], None]


@pytest.fixture
def assert_no_leak(caplog: pytest.LogCaptureFixture) -> LeakCheck:
    """Assert that none of ``secrets`` shows in ``error`` (its str, repr, args,
    formatted traceback) or in any log record captured so far.

    Tests using it should call ``caplog.set_level(logging.DEBUG)`` first so
    that debug records are captured too.
    """

    def check(error: BaseException, secrets: list[str]) -> None:
        texts = [str(error), repr(error), *map(repr, error.args)]
        texts.append("".join(traceback.format_exception(error)))
        for record in caplog.records:
            texts.append(record.getMessage())
            if record.exc_info:
                texts.append("".join(traceback.format_exception(*record.exc_info)))
        assert all(secrets), "a secret to look for is empty"
        for text in texts:
            for secret in secrets:
                assert secret not in text, f"secret leaked into: {text!r}"

    return check


BlockFactory = Callable[..., IntegrationBlock]


@pytest.fixture
def make_block() -> BlockFactory:
    def build(name: str, **values: Any) -> IntegrationBlock:
        return IntegrationBlock(index=0, path="ossec.conf", line=1, name=name, **values)

    return build


@pytest.fixture
def context(tmp_path: Path, session: aiohttp.ClientSession) -> IntegrationContext:
    return IntegrationContext(
        home=tmp_path, state_dir=tmp_path / "state", settings=IntegrationSettings(), http=session
    )


@pytest.fixture
def dry_context(tmp_path: Path) -> IntegrationContext:
    """A context like ``test`` (dry-run) mode gives: no session, no sink."""
    return IntegrationContext(
        home=tmp_path, state_dir=tmp_path / "state", settings=IntegrationSettings()
    )


@dataclass(frozen=True)
class GoldenCase:
    """``<case>.alert.json`` (+ ``<case>.options.json``) in, ``<case>.expected.json`` out."""

    name: str
    alert: dict[str, Any]
    options: dict[str, Any] | None
    expected_bytes: bytes  # compact JSON, key order as expected

    @property
    def expected(self) -> Any:
        return orjson.loads(self.expected_bytes)


def load_golden_cases(integration: str) -> list[GoldenCase]:
    folder = GOLDEN_ROOT / integration
    cases = []
    for alert_path in sorted(folder.glob("*.alert.json")):
        name = alert_path.name.removesuffix(".alert.json")
        options_path = folder / f"{name}.options.json"
        expected = orjson.loads((folder / f"{name}.expected.json").read_bytes())
        cases.append(
            GoldenCase(
                name=name,
                alert=orjson.loads(alert_path.read_bytes()),
                options=orjson.loads(options_path.read_bytes()) if options_path.exists() else None,
                expected_bytes=orjson.dumps(expected),
            )
        )
    return cases


# -- stand-ins for the enrichment services and analysisd ---------------------


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    async with FakeService().running() as running:
        yield running


@pytest.fixture
def analysisd() -> Iterator[DatagramReceiver]:
    with analysisd_receiver() as running:
        yield running


@pytest.fixture
def sink(analysisd: DatagramReceiver) -> Iterator[AnalysisdSocket]:
    events = AnalysisdSocket(analysisd.path)
    yield events
    events.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state.db")
    yield state
    state.close()
