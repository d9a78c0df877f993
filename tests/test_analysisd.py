"""analysisd datagrams: their exact bytes, and delivery to a real Unix datagram socket."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wazuh_integrator.analysisd import (
    MAX_DATAGRAM_BYTES,
    AnalysisdSocket,
    AnalysisdUnavailable,
    EventTooLarge,
    format_event_message,
)
from wazuh_integrator.errors import Permanent, Transient

EVENT = {"virustotal": {"found": 0, "malicious": 0}, "integration": "virustotal"}
# Stock's scripts write events with Python's json.dumps defaults: ", " and ": ".
EVENT_JSON = '{"virustotal": {"found": 0, "malicious": 0}, "integration": "virustotal"}'


@pytest.mark.parametrize(
    ("alert", "prefix"),
    [
        pytest.param({}, "1:virustotal:", id="no-agent"),
        pytest.param({"agent": {"id": "000", "name": "manager"}}, "1:virustotal:", id="manager"),
        pytest.param(
            {"agent": {"id": "001", "name": "web-01", "ip": "10.0.0.5"}},
            "1:[001] (web-01) 10.0.0.5->virustotal:",
            id="agent-with-ip",
        ),
        pytest.param(
            {"agent": {"id": "002", "name": "db"}},
            "1:[002] (db) any->virustotal:",
            id="agent-without-ip",
        ),
        pytest.param(
            {"agent": {"id": "002", "name": "db", "ip": None}},
            "1:[002] (db) any->virustotal:",
            id="agent-with-null-ip",
        ),
        pytest.param(
            {"agent": {"id": "005", "name": "db", "ip": ""}},
            "1:[005] (db) ->virustotal:",
            id="agent-with-empty-ip-kept-as-stock-does",
        ),
        pytest.param({"agent": {}}, "1:virustotal:", id="empty-agent"),
        pytest.param(
            {"agent": {"id": "000", "name": "manager", "ip": "10.0.0.1"}},
            "1:virustotal:",
            id="manager-with-ip",
        ),
        pytest.param(
            {"agent": {"id": "003", "name": "a|b:c", "ip": "fe80::1"}},
            "1:[003] (a||b|:c) fe80|:|:1->virustotal:",
            id="escaped-pipe-and-colon",
        ),
        pytest.param(
            {"agent": {"id": "004", "name": "x|:y", "ip": "any"}},
            "1:[004] (x|||:y) any->virustotal:",
            id="pipe-before-colon",
        ),
    ],
)
def test_format_event_message_locates_the_event_like_the_alert(
    alert: dict[str, Any], prefix: str
) -> None:
    assert format_event_message(EVENT, alert, "virustotal") == (prefix + EVENT_JSON).encode()


def test_format_event_message_escapes_non_ascii_in_the_json_like_stock() -> None:
    message = format_event_message({"file": "/tmp/résumé", "n": [1, 2.5, None]}, {}, "maltiverse")
    assert message == b'1:maltiverse:{"file": "/tmp/r\\u00e9sum\\u00e9", "n": [1, 2.5, null]}'


def test_format_event_message_keeps_a_non_ascii_agent_name_as_utf8() -> None:
    alert = {"agent": {"id": "007", "name": "caf\u00e9", "ip": "10.0.0.7"}}
    message = format_event_message({"n": 1}, alert, "maltiverse")
    assert message == '1:[007] (caf\u00e9) 10.0.0.7->maltiverse:{"n": 1}'.encode()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to about 107 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="wi-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def bind_receiver(path: Path) -> socket.socket:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.setblocking(False)
    return receiver


def stop_receiver(receiver: socket.socket, path: Path) -> None:
    """What a stopping analysisd does: close its socket and remove the file."""
    receiver.close()
    path.unlink()


@pytest.fixture
def queue_path(short_dir: Path) -> Path:
    return short_dir / "queue"


@pytest.fixture
def receiver(queue_path: Path) -> Iterator[socket.socket]:
    sock = bind_receiver(queue_path)
    yield sock
    sock.close()


async def test_send_event_delivers_one_datagram(queue_path: Path, receiver: socket.socket) -> None:
    alert = {"id": "1.2", "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.5"}}
    async with AnalysisdSocket(queue_path) as sink:
        await sink.send_event(EVENT, alert, "virustotal")
        await sink.send_event({"n": 2}, {}, "maltiverse")
    assert receiver.recv(MAX_DATAGRAM_BYTES + 1) == format_event_message(EVENT, alert, "virustotal")
    assert receiver.recv(MAX_DATAGRAM_BYTES + 1) == b'1:maltiverse:{"n": 2}'


async def test_a_datagram_of_exactly_the_limit_is_sent_whole(
    queue_path: Path, receiver: socket.socket
) -> None:
    overhead = len(format_event_message({"p": ""}, {}, "virustotal"))
    event = {"p": "x" * (MAX_DATAGRAM_BYTES - overhead)}
    assert len(format_event_message(event, {}, "virustotal")) == MAX_DATAGRAM_BYTES
    async with AnalysisdSocket(queue_path) as sink:
        await sink.send_event(event, {}, "virustotal")
    assert len(receiver.recv(2 * MAX_DATAGRAM_BYTES)) == MAX_DATAGRAM_BYTES


async def test_an_event_larger_than_64_kib_is_refused_not_cut(
    queue_path: Path, receiver: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    event = {"p": "x" * MAX_DATAGRAM_BYTES}
    async with AnalysisdSocket(queue_path) as sink:
        with pytest.raises(EventTooLarge) as caught:
            await sink.send_event(event, {"id": "77.1"}, "maltiverse")
    assert isinstance(caught.value, Permanent)
    assert "exceeds" in str(caught.value)
    assert "77.1" in caplog.text
    with pytest.raises(BlockingIOError):
        receiver.recv(2 * MAX_DATAGRAM_BYTES)


async def test_missing_socket_is_transient(queue_path: Path) -> None:
    async with AnalysisdSocket(queue_path) as sink:
        with pytest.raises(AnalysisdUnavailable) as caught:
            await sink.send_event(EVENT, {}, "virustotal")
    assert isinstance(caught.value, Transient)
    assert str(queue_path) in str(caught.value)


async def test_a_socket_file_nobody_listens_on_is_transient(queue_path: Path) -> None:
    bind_receiver(queue_path).close()  # leaves the file behind, as a crashed analysisd does
    assert stat.S_ISSOCK(os.stat(queue_path).st_mode)
    async with AnalysisdSocket(queue_path) as sink:
        with pytest.raises(AnalysisdUnavailable):
            await sink.send_event(EVENT, {}, "virustotal")


async def test_reconnects_when_analysisd_restarts(queue_path: Path) -> None:
    first = bind_receiver(queue_path)
    sink = AnalysisdSocket(queue_path)
    try:
        await sink.send_event({"n": 1}, {}, "virustotal")
        assert first.recv(1024) == b'1:virustotal:{"n": 1}'

        stop_receiver(first, queue_path)
        with pytest.raises(AnalysisdUnavailable):
            await sink.send_event({"n": 2}, {}, "virustotal")

        second = bind_receiver(queue_path)
        try:
            await sink.send_event({"n": 3}, {}, "virustotal")
            assert second.recv(1024) == b'1:virustotal:{"n": 3}'
        finally:
            second.close()
    finally:
        sink.close()


async def test_reconnects_without_losing_the_event_when_the_socket_was_replaced(
    queue_path: Path,
) -> None:
    first = bind_receiver(queue_path)
    sink = AnalysisdSocket(queue_path)
    try:
        await sink.send_event({"n": 1}, {}, "virustotal")
        stop_receiver(first, queue_path)
        second = bind_receiver(queue_path)
        try:
            # The open connection points at the old socket; the event still arrives.
            await sink.send_event({"n": 2}, {}, "virustotal")
            assert second.recv(1024) == b'1:virustotal:{"n": 2}'
        finally:
            second.close()
    finally:
        sink.close()


async def test_a_full_queue_is_transient(queue_path: Path, receiver: socket.socket) -> None:
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
    async with AnalysisdSocket(queue_path) as sink:
        with pytest.raises(AnalysisdUnavailable):
            for _ in range(100_000):
                await sink.send_event({"p": "x" * 1000}, {}, "virustotal")
