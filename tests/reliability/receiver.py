"""A webhook receiver that misbehaves on cue, in a process of its own.

Run as ``python -m tests.reliability.receiver``; it prints ``listening HOOK
CONTROL`` (two ports) and serves until SIGTERM. The hook port takes the
daemon's POSTs; the control port takes the test's orders:

- ``POST /fault`` with a JSON :class:`Fault`: how to answer from now on;
- ``GET /stats``: what it saw (see :meth:`Record.as_json`).

In its own process it keeps its pace whatever the daemon or the test do with
theirs, and a fault measured in time (an outage of 8 s) is timed here, where
the answers are made.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

KINDS = ("ok", "status", "refuse", "reset", "slow", "garbage")


@dataclass
class Fault:
    """How to answer.

    ``kind``: ``ok`` (200), ``status`` (answer ``status``, with ``Retry-After:
    retry_after`` when set), ``refuse`` (nothing listens on the hook port),
    ``reset`` (a TCP reset halfway through the answer), ``slow`` (a 200 after
    ``delay_s``), ``garbage`` (a 200 whose body is not what anyone expects).
    ``delay_s`` slows the ``status``, ``reset`` and ``garbage`` answers too.

    It applies to every ``every``-th request only (1: all), and ends by
    itself after ``for_s`` seconds or ``count`` faulty answers, whichever
    comes first (neither: it stays until the next order).
    """

    kind: str = "ok"
    status: int = 500
    retry_after: str | None = None
    every: int = 1
    for_s: float | None = None
    count: int | None = None
    delay_s: float = 0.0


@dataclass
class Record:
    """What the hook saw, by alert id (the Slack attachment's ``ts``)."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    # First time each alert was answered 2xx, and how often it was processed
    # (answered 2xx, or reset / answered late after the body was read: a real
    # receiver may have acted on those, so they count towards duplicates).
    first_accepted_at: dict[str, float] = field(default_factory=dict)
    processed: dict[str, int] = field(default_factory=dict)
    fault_started_at: float | None = None
    fault_ended_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultyReceiver:
    def __init__(self, hook_port: int) -> None:
        self.hook_port = hook_port
        self.fault = Fault()
        self.record = Record()
        self._faulty_answers = 0
        self._fault_deadline: float | None = None
        self._hook_runner: web.AppRunner | None = None
        self._ender: asyncio.Task[None] | None = None

    # -- the hook --------------------------------------------------------

    async def listen(self) -> None:
        if self._hook_runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.hook_port, reuse_address=True)
        await site.start()
        self.hook_port = runner.addresses[0][1]
        self._hook_runner = runner

    async def stop_listening(self) -> None:
        if self._hook_runner is not None:
            runner, self._hook_runner = self._hook_runner, None
            await runner.cleanup()

    def _applies(self) -> bool:
        fault = self.fault
        if fault.kind == "ok":
            return False
        return self.record.requests % max(1, fault.every) == 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.record.requests += 1
        body = await request.read()
        alert_id = _alert_id(body)
        fault = self.fault  # this request's, even if the fault ends meanwhile
        faulty = self._applies()
        kind = fault.kind if faulty else "ok"
        if faulty:
            self._faulty_answers += 1
            if self.fault.count is not None and self._faulty_answers >= self.fault.count:
                self._end_fault()
        if kind in ("status", "reset", "garbage") and fault.delay_s:
            await asyncio.sleep(fault.delay_s)  # a failing receiver that is slow too
        if kind == "status":
            status = fault.status
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._count_status(str(status))
            if 200 <= status < 300:
                self._processed(alert_id, accepted=True)
            return web.Response(status=status, headers=headers, text="failing on cue")
        if kind == "reset":
            self._count_status("reset")
            self._processed(alert_id, accepted=False)
            _reset(request)
            return web.Response(text="never sent: the connection is gone")
        if kind == "slow":
            # Processed on arrival: the answer comes too late for the sender,
            # but a real receiver may well have acted on the request.
            self._count_status("late")
            self._processed(alert_id, accepted=False)
            await asyncio.sleep(fault.delay_s)
            return web.Response(text="ok")
        if kind == "garbage":
            self._count_status("garbage")
            self._processed(alert_id, accepted=True)
            return web.Response(body=b"\x00\xff{not json", content_type="application/json")
        self._count_status("200")
        self._processed(alert_id, accepted=True)
        return web.Response(text="ok")

    def _count_status(self, status: str) -> None:
        self.record.statuses[status] = self.record.statuses.get(status, 0) + 1

    def _processed(self, alert_id: str | None, *, accepted: bool) -> None:
        if alert_id is None:
            return
        self.record.processed[alert_id] = self.record.processed.get(alert_id, 0) + 1
        if accepted:
            self.record.first_accepted_at.setdefault(alert_id, time.time())

    # -- faults ----------------------------------------------------------

    async def set_fault(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise web.HTTPBadRequest(text=f"unknown fault kind {fault.kind!r}")
        if self._ender is not None:
            self._ender.cancel()
            self._ender = None
        self.fault = fault
        self._faulty_answers = 0
        self.record.fault_started_at = time.time()
        self.record.fault_ended_at = None
        if fault.kind == "refuse":
            await self.stop_listening()
        else:
            await self.listen()
        if fault.kind == "ok":
            self.record.fault_ended_at = time.time()
        elif fault.for_s is not None:
            self._ender = asyncio.create_task(self._end_after(fault.for_s))

    async def _end_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._ender = None
        self._end_fault()
        await self.listen()

    def _end_fault(self) -> None:
        self.fault = Fault()
        self.record.fault_ended_at = time.time()

    # -- control -----------------------------------------------------------

    async def control_fault(self, request: web.Request) -> web.Response:
        fields = orjson.loads(await request.read())
        await self.set_fault(Fault(**fields))
        return web.json_response({"hook_port": self.hook_port})

    async def control_stats(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(self.record.as_json()), content_type="application/json"
        )

    async def control_reset_stats(self, _request: web.Request) -> web.Response:
        self.record = Record()
        return web.json_response({})


def _alert_id(body: bytes) -> str | None:
    try:
        payload = orjson.loads(body)
        return str(payload["attachments"][0]["ts"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None


def _reset(request: web.Request) -> None:
    """Half a status line, then a TCP reset (SO_LINGER 0 turns the close into RST)."""
    transport = request.transport
    if transport is None:
        return
    transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf an ans")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def serve(hook_port: int, control_port: int) -> None:
    receiver = FaultyReceiver(hook_port)
    await receiver.listen()
    control = web.Application()
    control.router.add_post("/fault", receiver.control_fault)
    control.router.add_get("/stats", receiver.control_stats)
    control.router.add_post("/reset", receiver.control_reset_stats)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    print(f"listening {receiver.hook_port} {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await receiver.stop_listening()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hook-port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.hook_port, args.control_port))


if __name__ == "__main__":
    main()
