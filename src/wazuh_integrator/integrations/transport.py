"""Webhook requests sent by HTTP transport processes, on the machine's other cores.

The daemon is CPU-bound in one process when alerts come fast; the socket work
of its requests (:meth:`~.http1.Http1Pool.request`) is the part that moves
without moving any decision. :class:`HttpProcesses` starts transport
processes (:mod:`.http_worker`) and :class:`RemotePool` forwards each request
to one of them over a socket pair, and hands back the answer or the error as
the in-process pool would have. Outcomes are still decided in the daemon, so
the checkpoint, retries and parking do not change.

A transport process that dies fails its requests in flight as connection
errors (retried or parked, as any), and another starts. Until one is ready
(at start, after a death), requests are sent from the daemon's own process,
as they are for good when none can start at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import cast

from wazuh_integrator.integrations.http1 import Answer, Http1Pool, Target
from wazuh_integrator.integrations.transport_frames import (
    ANSWER,
    ERROR,
    READY,
    FrameReader,
    FrameWriter,
    TlsPaths,
    read_answer,
    read_error,
    request_head,
    target_frame,
)
from wazuh_integrator.tls import ssl_context

__all__ = ["IN_PROCESS_BELOW", "HttpProcesses", "RemotePool", "TransportLost", "processes_for"]

log = logging.getLogger(__name__)

WORKER_MODULE = "wazuh_integrator.integrations.http_worker"
# A request the transport has not answered this long after its own time-out
# means the process is stuck (stopped, or looping): it is killed and replaced.
STUCK_GRACE_S = 10.0
# How long a transport process may take to exit once its socket is closed.
EXIT_WAIT_S = 5.0
_REQUEST_IDS = 1 << 32
# With fewer requests than this in flight, alerts come slowly: a request is
# sent from the daemon's own process, where it costs less CPU and no extra
# hop (scenario 3: the transport added about 0.5 ms to the median at 1,000
# alerts/s). As they pile up, the transport takes them.
IN_PROCESS_BELOW = 4


class TransportLost(ConnectionError):
    """The transport process ended with the request in flight."""


def processes_for(setting: int | None) -> int:
    """How many transport processes to run: ``setting``, or for None ("auto")
    one when this process may run on two CPUs or more, else none."""
    if setting is not None:
        return setting
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 1 if cpus >= 2 else 0


class _Channel(asyncio.Protocol):
    """The daemon's side of one transport process."""

    def __init__(
        self, process: subprocess.Popen[bytes], on_lost: Callable[[_Channel], None]
    ) -> None:
        self.process = process
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._reader = FrameReader()
        self._writer = FrameWriter(self._loop)
        self._transport: asyncio.Transport | None = None
        self.pending: dict[int, tuple[asyncio.Future[Answer], float]] = {}
        self._next_id = 0
        self.registered: set[int] = set()
        self.ready = False
        self.ended = False
        self.closing = False
        self._sweeper: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = self._writer.transport = cast(asyncio.Transport, transport)
        self._sweeper = self._loop.call_later(1.0, self._sweep)

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        for kind, payload in self._reader.feed(data):
            if kind == ANSWER:
                request_id, answer = read_answer(payload)
                entry = pending.pop(request_id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(answer)
            elif kind == ERROR:
                request_id, error = read_error(payload)
                entry = pending.pop(request_id, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_exception(error)
            elif kind == READY:
                self.ready = True

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._fail_all(TransportLost("the HTTP transport process exited"))
        self._on_lost(self)

    # -- requests ----------------------------------------------------------------

    def register(self, target_id: int, target: Target, tls: TlsPaths) -> None:
        self.registered.add(target_id)
        self._writer.send(target_frame(target_id, target, tls))

    def request(self, target_id: int, body: bytes, timeout_s: float) -> asyncio.Future[Answer]:
        request_id = self._next_id
        self._next_id = (request_id + 1) % _REQUEST_IDS
        waiter: asyncio.Future[Answer] = self._loop.create_future()
        self.pending[request_id] = (waiter, self._loop.time() + timeout_s + STUCK_GRACE_S)
        self._writer.send(request_head(request_id, target_id, timeout_s, len(body)), body)
        return waiter

    def _sweep(self) -> None:
        now = self._loop.time()
        if any(deadline < now for _, deadline in self.pending.values()):
            log.warning(
                "The HTTP transport process %d has not answered within its time-out; "
                "it is replaced.",
                self.process.pid,
            )
            self.process.kill()  # its socket then ends: connection_lost fails the rest
            return
        self._sweeper = self._loop.call_later(1.0, self._sweep)

    def _fail_all(self, error: Exception) -> None:
        pending, self.pending = self.pending, {}
        for waiter, _ in pending.values():
            if not waiter.done():
                waiter.set_exception(error)

    def close(self) -> None:
        self.closing = True
        if self._transport is not None:
            self._transport.close()


class HttpProcesses:
    """The transport processes, started on the first request, and the targets
    each knows. Requests are spread over them in turn."""

    def __init__(self, count: int, in_process_below: int = IN_PROCESS_BELOW) -> None:
        """``count`` processes; with fewer than ``in_process_below`` requests
        in flight, a request is sent from here (see IN_PROCESS_BELOW)."""
        if count < 1:
            raise ValueError("HttpProcesses needs one process or more")
        self._in_process_below = in_process_below
        self._in_flight_here = 0
        self._slots: list[_Channel | None] = [None] * count
        self._next_slot = 0
        self._target_ids: dict[tuple[TlsPaths, Target], int] = {}
        self._starting: dict[int, asyncio.Task[_Channel | None]] = {}
        self._reaping: set[asyncio.Task[None]] = set()
        self._local: dict[TlsPaths, Http1Pool] = {}
        self._local_only = False
        self._gave_up = False  # and said so
        self._closed = False

    def pool(self, tls: TlsPaths) -> RemotePool:
        """The pool for one TLS setting; the processes start now, so that the
        first alerts do not wait for an interpreter to start."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no event loop yet: they start with the first request
        else:
            for slot in range(len(self._slots)):
                self._start_soon(slot)
        return RemotePool(self, tls)

    @property
    def count(self) -> int:
        return len(self._slots)

    def ready(self) -> int:
        """How many transport processes run and take requests now."""
        return sum(1 for c in self._slots if c is not None and c.ready and not c.ended)

    def request(
        self, tls: TlsPaths, target: Target, body: bytes, timeout_s: float
    ) -> Awaitable[Answer]:
        slot = self._next_slot
        self._next_slot = (slot + 1) % len(self._slots)
        channel = self._slots[slot]
        if (
            channel is None
            or not channel.ready
            or channel.ended
            or self._in_flight_here + len(channel.pending) < self._in_process_below
        ):
            return self._request_in_process(slot, tls, target, body, timeout_s)
        key = (tls, target)
        target_id = self._target_ids.get(key)
        if target_id is None:
            target_id = self._target_ids[key] = len(self._target_ids)
        if target_id not in channel.registered:
            channel.register(target_id, target, tls)
        return channel.request(target_id, body, timeout_s)

    async def _request_in_process(
        self, slot: int, tls: TlsPaths, target: Target, body: bytes, timeout_s: float
    ) -> Answer:
        """A request sent from here: few are in flight, or this slot has no
        transport ready (rather than wait for an interpreter to start)."""
        if self._closed:
            raise TransportLost("the HTTP client is closed")
        if not self._local_only:
            self._start_soon(slot)
        self._in_flight_here += 1
        try:
            return await self._local_pool(tls).request(target, body, timeout_s)
        finally:
            self._in_flight_here -= 1

    def _local_pool(self, tls: TlsPaths) -> Http1Pool:
        pool = self._local.get(tls)
        if pool is None:
            pool = self._local[tls] = Http1Pool(ssl_context(*tls))
        return pool

    def _start_soon(self, slot: int) -> None:
        """Start a transport in ``slot`` unless one runs or is starting there."""
        if slot in self._starting or self._local_only or self._closed:
            return
        channel = self._slots[slot]
        if channel is not None and not channel.ended:
            return
        starting = self._starting[slot] = asyncio.ensure_future(self._start(slot))
        starting.add_done_callback(lambda _: self._starting.pop(slot, None))

    async def _start(self, slot: int) -> _Channel | None:
        if self._local_only or self._closed:
            return None
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        try:
            try:
                process = _spawn(theirs.fileno())
            finally:
                theirs.close()
            _, channel = await loop.create_connection(
                lambda: _Channel(process, self._lost), sock=ours
            )
        except OSError as exc:
            ours.close()
            self._give_up(f"cannot start an HTTP transport process: {exc}")
            return None
        self._slots[slot] = channel
        log.debug("HTTP transport process %d started", process.pid)
        return channel

    def _give_up(self, reason: str) -> None:
        if not self._gave_up:
            log.error("%s; webhooks are sent from the daemon's own process.", reason)
        self._gave_up = self._local_only = True

    def _lost(self, channel: _Channel) -> None:
        # Judged now: closing, we may mark it closing before it is reaped.
        unexpected = not channel.closing
        failed_on_start = unexpected and not channel.ready
        if failed_on_start:
            # Decided now, before another request would start another such process.
            self._local_only = True
        task = asyncio.ensure_future(self._reap(channel, unexpected, failed_on_start))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def _reap(self, channel: _Channel, unexpected: bool, failed_on_start: bool) -> None:
        process = channel.process
        loop = asyncio.get_running_loop()
        try:
            status = await asyncio.wait_for(
                loop.run_in_executor(None, process.wait), timeout=EXIT_WAIT_S
            )
        except asyncio.TimeoutError:
            process.kill()
            status = await loop.run_in_executor(None, process.wait)
        if not unexpected:
            return
        if failed_on_start:
            self._give_up(f"the HTTP transport process exited on start with status {status}")
            return
        log.warning(
            "The HTTP transport process %d exited with status %d; its requests in "
            "flight are retried, and the next request starts another.",
            process.pid,
            status,
        )

    async def close(self) -> None:
        """Close every transport process's socket (each then exits) and wait
        for them, so that their CPU counts as the daemon's children's."""
        self._closed = True
        for starting in list(self._starting.values()):
            await asyncio.wait([starting])
        for channel in self._slots:
            if channel is not None:
                if not channel.ready and not channel.ended:
                    # Still starting, so it took no request; it would see its
                    # socket end only after its imports (a quarter of a second
                    # that every short `run --once` waited for).
                    channel.process.kill()
                channel.close()
        for _ in range(2):
            await asyncio.sleep(0)  # connection_lost runs: the reaping starts
        if self._reaping:
            await asyncio.wait(list(self._reaping))
        for pool in self._local.values():
            await pool.close()


def _spawn(fd: int) -> subprocess.Popen[bytes]:
    # Not fork: the daemon has threads. The socket is the only descriptor it
    # inherits, so that its end is the daemon's closing or death alone.
    env = {key: value for key, value in os.environ.items() if key != "NOTIFY_SOCKET"}
    return subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, str(fd)],
        pass_fds=(fd,),
        close_fds=True,
        stdin=subprocess.DEVNULL,
        env=env,
        # Out of the daemon's process group: Ctrl-C and a signal to the group
        # cannot reach it in the moment before it ignores them.
        start_new_session=True,
    )


class RemotePool:
    """An :class:`~.http1.Http1Pool` for one TLS setting, in a transport process."""

    def __init__(self, processes: HttpProcesses, tls: TlsPaths) -> None:
        self._processes = processes
        self._tls = tls

    def request(self, target: Target, body: bytes, timeout_s: float) -> Awaitable[Answer]:
        return self._processes.request(self._tls, target, body, timeout_s)
