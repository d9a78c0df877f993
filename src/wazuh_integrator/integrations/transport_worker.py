"""What an HTTP transport process runs (started by :mod:`.http_worker`).

It reads TARGET and REQUEST frames (:mod:`.transport_frames`) from its socket,
sends each request on an :class:`~.http1.Http1Pool` per TLS setting, and
writes back the answer or the error; everything else (bodies, retries,
outcomes, the checkpoint) stays in the daemon. It returns when its socket
ends, the daemon having closed it or died. It logs nothing of a request.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from wazuh_integrator import compat
from wazuh_integrator.integrations.http1 import Http1Pool, Target
from wazuh_integrator.integrations.transport_frames import (
    READY,
    REQUEST,
    TARGET,
    FrameReader,
    FrameWriter,
    TlsPaths,
    answer_frame,
    error_frame,
    error_of,
    read_request,
    read_target,
)
from wazuh_integrator.tls import ssl_context

__all__ = ["serve"]


class _Worker(asyncio.Protocol):
    """The transport's side of the socket pair."""

    def __init__(self, ended: asyncio.Future[None]) -> None:
        self._ended = ended
        self._loop = asyncio.get_running_loop()
        self._reader = FrameReader()
        self._writer = FrameWriter(self._loop)
        self._targets: dict[int, tuple[Target, TlsPaths]] = {}
        self.pools: dict[TlsPaths, Http1Pool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._writer.transport = cast(asyncio.Transport, transport)
        self._writer.send(bytes((1, 0, 0, 0, READY)))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    def eof_received(self) -> bool:
        return False  # close our side too: the daemon has gone

    def data_received(self, data: bytes) -> None:
        for kind, payload in self._reader.feed(data):
            if kind == REQUEST:
                request_id, target_id, timeout_s, body = read_request(payload)
                task = self._loop.create_task(self._serve(request_id, target_id, timeout_s, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif kind == TARGET:
                target_id, target, tls = read_target(payload)
                self._targets[target_id] = (target, tls)

    def _pool(self, tls: TlsPaths) -> Http1Pool:
        pool = self.pools.get(tls)
        if pool is None:
            # The same verifying context the daemon built from these paths.
            pool = self.pools[tls] = Http1Pool(ssl_context(*tls))
        return pool

    async def _serve(self, request_id: int, target_id: int, timeout_s: float, body: bytes) -> None:
        try:
            target, tls = self._targets[target_id]
            answer = await self._pool(tls).request(target, body, timeout_s)
        except Exception as exc:  # every failure goes back to the daemon to classify
            self._writer.send(error_frame(request_id, *error_of(exc)))
        else:
            self._writer.send(answer_frame(request_id, answer))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for pool in self.pools.values():
            await pool.close()


def _quiet_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # An exception's text may quote a request; say only what went wrong where.
    sys.stderr.write(f"wazuh-integrator http transport: {context.get('message', 'error')}\n")


def serve(fd: int) -> None:
    """Serve the daemon on the socket ``fd`` until it ends."""
    compat.run(_serve(fd), _loop_factory())


async def _serve(fd: int) -> None:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_handler)
    ended: asyncio.Future[None] = loop.create_future()
    worker: _Worker | None = None

    def factory() -> _Worker:
        nonlocal worker
        worker = _Worker(ended)
        return worker

    sock = socket.socket(fileno=fd)
    await loop.create_connection(factory, sock=sock)
    await ended
    if worker is not None:
        await worker.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
