"""The environment checks against real directories, sockets and servers."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from wazuh_integrator.environment import (
    Outcome,
    Verdict,
    check_alerts_file,
    check_analysisd_socket,
    check_receiver,
    check_receivers,
    check_state_dir,
)

TOKEN = "T0/B0/env-secret-token"


def test_an_existing_writable_state_dir_is_ok(tmp_path: Path) -> None:
    verdict = check_state_dir(tmp_path)

    assert verdict.outcome is Outcome.OK
    assert list(tmp_path.iterdir()) == [], "the probe file is removed"


def test_a_state_dir_that_can_be_created_is_ok_and_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "var" / "integrator"

    verdict = check_state_dir(target)

    assert verdict.outcome is Outcome.OK
    assert "does not exist yet" in verdict.detail
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["/proc", "/proc/wazuh-check/integrator"])
def test_a_state_dir_nobody_can_write_fails(path: str) -> None:
    # /proc refuses new files even to root, as var/ refuses them to wazuh on a real manager.
    verdict = check_state_dir(Path(path))

    assert verdict.outcome is Outcome.FAILED
    assert "not writable" in verdict.detail or "cannot create it in /proc" in verdict.detail


def test_a_file_in_place_of_the_state_dir_fails(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")

    assert check_state_dir(tmp_path / "state").outcome is Outcome.FAILED


def test_alerts_file(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts.json"
    assert check_alerts_file(alerts).outcome is Outcome.WARNING
    alerts.write_text("")
    assert check_alerts_file(alerts).outcome is Outcome.OK
    missing_dir = check_alerts_file(tmp_path / "nope" / "alerts.json")
    assert missing_dir.outcome is Outcome.FAILED


@pytest.fixture
def short_dir() -> Iterator[Path]:
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="wi-env-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_analysisd_socket(short_dir: Path) -> None:
    path = short_dir / "queue"
    assert check_analysisd_socket(path, []) is None, "no enrichment, no check"
    missing = check_analysisd_socket(path, ["virustotal#1"])
    assert missing is not None
    assert missing.outcome is Outcome.FAILED
    assert "needed by virustotal#1" in missing.detail

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    try:
        live = check_analysisd_socket(path, ["maltiverse#0", "virustotal#1"])
        assert live == Verdict(
            Outcome.OK,
            f"analysisd socket {path}",
            "analysisd listens (needed by maltiverse#0, virustotal#1)",
        )
    finally:
        listener.close()
    dead = check_analysisd_socket(path, ["virustotal#1"])  # the file stays, nobody behind it
    assert dead is not None
    assert dead.outcome is Outcome.FAILED
    assert "nobody listens" in dead.detail

    os.unlink(path)
    path.write_text("")
    regular = check_analysisd_socket(path, ["virustotal#1"])
    assert regular is not None
    assert regular.detail.startswith("not a socket")


@pytest.fixture
async def server_port() -> AsyncIterator[int]:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


async def test_a_listening_receiver_is_ok(server_port: int) -> None:
    verdict = await check_receiver("slack#0", f"http://127.0.0.1:{server_port}/services/{TOKEN}")

    assert verdict == Verdict(
        Outcome.OK,
        f"slack#0 receiver http://127.0.0.1:{server_port}",
        "resolves (1 address(es)), connects",
    )


async def test_receivers_that_fail_say_how(server_port: int) -> None:
    refused = await closed_port()
    verdicts = await check_receivers(
        [
            ("slack#0", f"http://127.0.0.1:{refused}/services/{TOKEN}"),
            # TLS against a plain HTTP server: the handshake cannot complete.
            ("shuffle#1", f"https://127.0.0.1:{server_port}/hooks/{TOKEN}"),
            ("pagerduty#2", f"https://nosuch-host.invalid/{TOKEN}"),
            ("custom-x#3", "not a url"),
        ],
        timeout_s=5,
    )

    assert [(v.outcome, v.subject) for v in verdicts] == [
        (Outcome.FAILED, f"slack#0 receiver http://127.0.0.1:{refused}"),
        (Outcome.FAILED, f"shuffle#1 receiver https://127.0.0.1:{server_port}"),
        (Outcome.FAILED, "pagerduty#2 receiver https://nosuch-host.invalid:443"),
        (Outcome.WARNING, "custom-x#3 receiver"),
    ]
    assert verdicts[0].detail == "cannot connect: Connection refused"
    assert verdicts[1].detail.startswith("TLS handshake failed: ")
    assert verdicts[2].detail.startswith("cannot resolve nosuch-host.invalid: ")
    assert all("env-secret-token" not in str(verdict) for verdict in verdicts)
