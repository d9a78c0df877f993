"""HTTP transport processes (integrations/transport.py): the same answers and
errors as the in-process pool, and what happens when a process dies.

Real transport processes, real local servers on 127.0.0.1; the answers'
parity over every server behaviour is in test_http1.py, run both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
import textwrap
from pathlib import Path

import pytest
import trustme
from tests.integrations.standins import wait_until
from tests.integrations.test_http1 import (
    RawServer,
    answer_ok,
    send,
    server_tls,
)
from tests.integrations.transport_support import ready_session

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import DeliveryError, Transient
from wazuh_integrator.integrations import transport
from wazuh_integrator.integrations.http1 import BadAnswer, ServerDisconnected
from wazuh_integrator.integrations.sessions import HttpSessions
from wazuh_integrator.integrations.transport_frames import (
    FrameReader,
    answer_frame,
    error_frame,
    error_of,
    read_answer,
    read_error,
)


def transport_children(parent: int) -> list[int]:
    """The transport processes whose parent is ``parent``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if (
            int(fields[1]) == parent
            and fields[0] != "Z"
            and transport.WORKER_MODULE.encode() in cmdline
        ):
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def sockets(pid: int) -> int:
    """How many sockets ``pid`` holds open."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))
    except OSError:
        return 0


def reaped(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


async def hang(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
    await asyncio.sleep(60)
    return False


async def failure(processes: int, url: str, **kw: object) -> DeliveryError:
    async with HttpSessions(processes, in_process_below=0) as sessions:
        session = await ready_session(sessions, IntegrationSettings(**kw))  # type: ignore[arg-type]
        with pytest.raises(DeliveryError) as caught:
            await send(session, url, timeout_s=0.5)
    return caught.value


async def test_errors_read_as_they_do_in_process(refused_base_url: str, tmp_path: Path) -> None:
    url = f"{refused_base_url}/services/T0/B0/secret-token"
    for_each = [await failure(n, url) for n in (0, 1)]
    assert [type(e) for e in for_each] == [Transient, Transient]
    # The texts differ by event loop (the transport runs uvloop, as the daemon does).
    for error in for_each:
        assert str(error).startswith("connection failed: ConnectionRefusedError: ")
    async with RawServer(hang) as server:
        for_each = [await failure(n, server.url()) for n in (0, 1)]
    assert type(for_each[0]) is type(for_each[1])
    assert str(for_each[0]) == str(for_each[1]) == "timed out: TimeoutError: no answer within 0.5 s"
    async with RawServer(answer_ok, server_tls(trustme.CA())) as server:
        for_each = [await failure(n, server.url()) for n in (0, 1)]
    assert str(for_each[0]) == str(for_each[1])
    assert "SSLCertVerificationError" in str(for_each[1])
    assert "secret-token" not in str(for_each[1])


@pytest.mark.parametrize(
    "error",
    [
        asyncio.TimeoutError("no answer within 3 s"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)"),
        ssl.SSLCertVerificationError(1, "certificate verify failed"),
        ServerDisconnected("the server closed the connection without answering"),
        BadAnswer("malformed HTTP answer: x"),
        TimeoutError(110, "Connection timed out"),
    ],
    ids=repr,
)
def test_an_error_crosses_as_the_same_type_and_text(error: BaseException) -> None:
    (_, payload), *_ = FrameReader().feed(error_frame(7, *error_of(error)))
    request_id, rebuilt = read_error(payload)
    assert request_id == 7
    assert type(rebuilt) is type(error)
    assert str(rebuilt) == str(error)


def test_an_unknown_error_crosses_as_a_connection_failure_naming_it() -> None:
    (_, payload), *_ = FrameReader().feed(error_frame(1, *error_of(KeyError("x"))))
    _, rebuilt = read_error(payload)
    assert type(rebuilt) is OSError
    assert str(rebuilt) == "KeyError: 'x'"


def test_frames_cut_anywhere_are_read_whole() -> None:
    from wazuh_integrator.integrations.http1 import Answer

    stream = b"".join(
        answer_frame(n, Answer(429 if n % 2 else 200, "7" if n % 2 else None, b"x" * n))
        for n in range(50)
    )
    reader = FrameReader()
    frames = []
    for start in range(0, len(stream), 13):
        frames.extend(reader.feed(stream[start : start + 13]))
    answers = [read_answer(payload) for _, payload in frames]
    assert [request_id for request_id, _ in answers] == list(range(50))
    assert answers[3][1] == Answer(429, "7", b"xxx")
    assert answers[4][1] == Answer(200, None, b"xxxx")


async def test_a_killed_transport_fails_its_requests_and_the_next_starts_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        RawServer(hang) as slow,
        RawServer(answer_ok) as fast,
        HttpSessions(1, in_process_below=0) as sessions,
    ):
        session = await ready_session(sessions)
        await send(session, fast.url())
        (first,) = transport_children(os.getpid())
        in_flight = [
            asyncio.ensure_future(send(session, slow.url(), timeout_s=30)) for _ in range(5)
        ]
        await wait_until(lambda: len(slow.requests) == 5, "the requests to arrive")
        os.kill(first, signal.SIGKILL)
        done, _ = await asyncio.wait(in_flight, timeout=20)
        assert len(done) == 5
        for request in in_flight:
            with pytest.raises(Transient, match="connection failed: TransportLost"):
                request.result()
        # Sent from the daemon while another transport starts, then through it.
        await send(session, fast.url())
        await ready_session(sessions)
        await send(session, fast.url())
        (second,) = transport_children(os.getpid())
        assert second != first
        assert len(fast.requests) == 3
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == transport.__name__
    ]
    assert [r.getMessage() for r in warnings] == [
        f"The HTTP transport process {first} exited with status -9; its requests in flight "
        "are retried, and the next request starts another."
    ]


async def test_a_stopped_transport_is_killed_and_replaced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transport, "STUCK_GRACE_S", 0.5)
    async with (
        RawServer(answer_ok) as server,
        HttpSessions(1, in_process_below=0) as sessions,
    ):
        session = await ready_session(sessions)
        (child,) = transport_children(os.getpid())
        os.kill(child, signal.SIGSTOP)
        try:
            with pytest.raises(Transient, match="TransportLost"):
                await asyncio.wait_for(send(session, server.url(), timeout_s=0.2), 30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGCONT)
        await send(session, server.url())  # in process, starting another transport
        await ready_session(sessions)
        await send(session, server.url())
        assert child not in transport_children(os.getpid())
    assert any("has not answered within its time-out" in r.getMessage() for r in caplog.records)


async def test_a_transport_ignores_sigterm_and_sigint_and_is_reaped_on_close() -> None:
    async with RawServer(answer_ok) as server:
        async with HttpSessions(1, in_process_below=0) as sessions:
            session = await ready_session(sessions)
            await send(session, server.url())
            (child,) = transport_children(os.getpid())
            os.kill(child, signal.SIGTERM)
            os.kill(child, signal.SIGINT)
            await asyncio.sleep(0.2)
            await send(session, server.url())
            assert transport_children(os.getpid()) == [child]
        # Closed: the process has exited and been waited for (no zombie left).
        assert reaped(child)


async def test_closing_while_a_transport_starts_kills_it_rather_than_wait_for_it() -> None:
    sessions = HttpSessions(1, in_process_below=0)
    sessions.for_settings(IntegrationSettings())  # the transport starts now
    await wait_until(lambda: len(transport_children(os.getpid())) == 1, "a transport")
    (child,) = transport_children(os.getpid())
    processes = sessions.processes
    assert processes is not None and processes.ready() == 0  # still importing
    (channel,) = processes._slots  # its Popen tells how it ended
    assert channel is not None
    await sessions.close()
    # Killed, not asked to exit: a short `run --once` does not wait for its imports.
    assert reaped(child)
    assert channel.process.returncode == -signal.SIGKILL


async def test_a_transport_that_cannot_start_leaves_requests_in_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(transport, "WORKER_MODULE", "wazuh_integrator.no_such_module")

    def errors() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.ERROR and r.name == transport.__name__
        ]

    async with RawServer(answer_ok) as server, HttpSessions(2) as sessions:
        session = sessions.for_settings(IntegrationSettings())
        for _ in range(3):
            await send(session, server.url())
        # Both slots began a process; each exits on its own, the second
        # perhaps well after the first was noticed on a loaded machine.
        await wait_until(
            lambda: bool(errors()) and not transport_children(os.getpid()),
            "the failure to be noticed and both processes to have exited",
        )
        for _ in range(3):
            await send(session, server.url())
        # None started again: the failure on start is remembered.
        assert transport_children(os.getpid()) == []
        assert len(server.requests) == 6
    assert errors() == [
        "the HTTP transport process exited on start with status 1; "
        "webhooks are sent from the daemon's own process."
    ]


async def test_requests_are_spread_over_several_transports(tmp_path: Path) -> None:
    async with RawServer(answer_ok) as server, HttpSessions(2, in_process_below=0) as sessions:
        session = await ready_session(sessions)
        await asyncio.gather(*(send(session, server.url()) for _ in range(20)))
        assert len(transport_children(os.getpid())) == 2
        assert len(server.requests) == 20
        assert server.connections >= 2


async def test_a_trickle_is_sent_in_process_and_a_burst_through_the_transport() -> None:
    async with RawServer(answer_ok) as server, HttpSessions(1) as sessions:
        session = await ready_session(sessions)
        (child,) = transport_children(os.getpid())
        idle = sockets(child)  # its socket pair, its event loop's own
        for _ in range(5):
            await send(session, server.url())
        assert sockets(child) == idle  # no connection of its own
        await asyncio.gather(*(send(session, server.url()) for _ in range(40)))
        assert sockets(child) > idle
        assert len(server.requests) == 45


DAEMON = textwrap.dedent(
    """
    import asyncio, sys
    from tests.integrations.test_http1 import send
    from wazuh_integrator.config.models import IntegrationSettings
    from wazuh_integrator.integrations.sessions import HttpSessions

    async def main():
        async with HttpSessions(1, in_process_below=0) as sessions:
            await send(sessions.for_settings(IntegrationSettings()), sys.argv[1])
            print("sent", flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
    """
)


async def test_a_transport_exits_when_the_daemon_is_killed() -> None:
    async with RawServer(answer_ok) as server:
        daemon = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DAEMON,
            server.url(),
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        try:
            assert daemon.stdout is not None
            assert await asyncio.wait_for(daemon.stdout.readline(), 60) == b"sent\n"
            (child,) = transport_children(daemon.pid)
            daemon.kill()
            await daemon.wait()
            await wait_until(lambda: gone(child), "the transport process to exit")
        finally:
            if daemon.returncode is None:
                daemon.kill()
                await daemon.wait()
