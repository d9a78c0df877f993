"""Stand-ins for the enrichment services and for analysisd, shared by the
VirusTotal and Maltiverse tests: a real local HTTP server that answers from a
table and records what it was asked, and a real Unix datagram socket."""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from wazuh_integrator.analysisd import AnalysisdSocket
from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.integrations.base import Integration, IntegrationContext, LookupCache
from wazuh_integrator.secret import Secret

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def golden_cases(integration: str) -> list[Path]:
    return sorted(path for path in (GOLDEN / integration).iterdir() if path.is_dir())


@dataclass(frozen=True)
class Answer:
    """What the fake service answers on one path. ``hang`` never answers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeService:
    """A local HTTP server answering from ``answers`` (raw path → Answer).

    Unknown paths get a 404 with an empty JSON object.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[Recorded] = []
        self.url = ""
        self._released = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(
                request.method,
                request.raw_path.split("?")[0],
                dict(request.query),
                dict(request.headers),
            )
        )
        answer = self.answers.get(request.raw_path.split("?")[0], Answer(404, {}))
        if answer.hang:
            await self._released.wait()
        if isinstance(answer.body, bytes):
            body = answer.body
        elif answer.body is None:
            body = b""
        else:
            body = json.dumps(answer.body).encode()
        return web.Response(
            status=answer.status, body=body, headers=answer.headers, content_type="application/json"
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeService]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: it is the service that sees the key in the query, not us.
        runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        try:
            yield self
        finally:
            self._released.set()
            await runner.cleanup()


def closed_port_url() -> str:
    """The URL of a loopback port that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class DatagramReceiver:
    """A bound Unix datagram socket standing in for analysisd's queue."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)

    def drain(self) -> list[bytes]:
        """Every datagram received so far (our sender never blocks, so all
        datagrams sent before this call are already queued)."""
        received = []
        while True:
            try:
                received.append(self._sock.recv(128 * 1024))
            except BlockingIOError:
                return received

    def close(self) -> None:
        self._sock.close()


@contextmanager
def analysisd_receiver() -> Iterator[DatagramReceiver]:
    # AF_UNIX paths are limited to about 107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="wi-", dir="/tmp") as directory:
        receiver = DatagramReceiver(Path(directory) / "queue")
        try:
            yield receiver
        finally:
            receiver.close()


def split_datagram(datagram: bytes) -> tuple[str, Any]:
    """A datagram's location (``1:`` header included) and its decoded event."""
    text = datagram.decode()
    brace = text.index(":{") + 1
    return text[:brace], json.loads(text[brace:])


@asynccontextmanager
async def client_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


EnrichmentT = TypeVar("EnrichmentT", bound=Integration)


def make_enrichment(
    cls: type[EnrichmentT],
    hook_url: str,
    session: aiohttp.ClientSession,
    sink: AnalysisdSocket,
    *,
    api_key: str,
    settings: IntegrationSettings,
    cache: LookupCache | None = None,
    timeout_s: int = 10,
) -> EnrichmentT:
    """An enrichment integration wired to a real HTTP session and analysisd socket."""
    block = IntegrationBlock(
        index=0,
        path="ossec.conf",
        line=1,
        name=cls.name,
        api_key=Secret(api_key),
        hook_url=Secret(hook_url),
        timeout_s=timeout_s,
    )
    context = IntegrationContext(
        home=Path("/var/ossec"),
        state_dir=Path("/var/ossec/var/integrator"),
        settings=settings,
        http=session,
        events=sink,
        cache=cache,
    )
    return cls(block, context)
