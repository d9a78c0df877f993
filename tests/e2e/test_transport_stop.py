"""A stop signalled to the daemon's whole process group, as Ctrl-C does, while
its HTTP transport process (http_processes = "auto") has requests in flight:
the transport outlives the daemon's drain, exits with it, and no accepted
alert is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    slack_block,
    until,
    write_config,
)
from tests.integrations.test_transport import gone, sockets, transport_children

from wazuh_integrator.integrations.transport import processes_for

HOOK = "/services/T0/B0/stop"
COUNT = 3000
SETTINGS = (
    'grace_period = "2s"\n[integrations.slack]\ninitial_backoff = "0.05s"\nmax_backoff = "0.5s"\n'
)

pytestmark = pytest.mark.skipif(
    processes_for(None) == 0, reason="one CPU: the daemon runs no HTTP transport process"
)


async def test_sigterm_to_the_process_group_during_a_burst_loses_nothing(
    home: Path, receiver: Receiver
) -> None:
    receiver.delay_s[HOOK] = 0.05  # sends in flight when the signal comes
    write_config(home, slack_block(receiver.url(HOOK)), SETTINGS)
    path = alerts_file(home)
    path.write_bytes(b"")
    daemon = Daemon(home, own_process_group=True)
    await daemon.start()
    await daemon.wait_for_log("Reading")
    append_alerts(path, range(COUNT))
    await until(lambda: len(transport_children(daemon.pid())) == 1, 60, "a transport", daemon)
    (transport,) = transport_children(daemon.pid())
    # Connections to the receiver beside its socket pair and its loop's own: it sends.
    await until(lambda: sockets(transport) > 4, 60, "the transport's requests", daemon)
    await until(lambda: len(receiver.ids(HOOK)) >= 100, 60, "the first deliveries", daemon)
    os.killpg(daemon.pid(), signal.SIGTERM)
    assert await daemon.wait(60) == 0, daemon.log()[-3000:]
    await until(lambda: gone(transport), 10, "the transport process to exit")
    log = daemon.log()
    assert "TransportLost" not in log and "transport process" not in log, log[-3000:]
    assert len(set(receiver.ids(HOOK))) < COUNT  # the stop came mid-burst
    # What was parked or unread is delivered after a restart: nothing is lost.
    receiver.delay_s[HOOK] = 0.0
    restarted = Daemon(home)
    await restarted.start()
    try:
        await until(lambda: len(set(receiver.ids(HOOK))) == COUNT, 120, "every alert", restarted)
    finally:
        assert await restarted.stop() == 0, restarted.log()[-3000:]


async def test_a_daemon_without_http_outputs_starts_no_transport(home: Path) -> None:
    record = home / "delivered"
    script = home / "integrations" / "custom-record"
    script.write_text(f'#!/bin/sh\ncat "$1" >> {record}\n')
    script.chmod(0o755)
    write_config(
        home,
        "<integration><name>custom-record</name><alert_format>json</alert_format></integration>",
    )
    path = alerts_file(home)
    path.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(path, range(1))
        await until(lambda: record.exists() and record.read_text() != "", 30, "the script", daemon)
        # Transports start with the routes, before reading: none by now is none at all.
        assert transport_children(daemon.pid()) == []
    finally:
        assert await daemon.stop() == 0, daemon.log()[-3000:]
