"""systemd's notification protocol: ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``.

One datagram to the Unix socket named by ``$NOTIFY_SOCKET`` (a leading ``@``
is an abstract address). Outside systemd the variable is unset and every
call does nothing, so the daemon runs the same from a shell.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

__all__ = ["notify", "watchdog_interval_s", "watchdog_loop"]

log = logging.getLogger(__name__)


def notify(*assignments: str) -> bool:
    """Send ``assignments`` (``"READY=1"``, ``"STATUS=..."``) in one datagram;
    False when not under systemd or the socket cannot be reached."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    message = "\n".join(assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError as exc:
        log.debug("Cannot notify systemd at %s: %s", address, exc)
        return False
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's ``WatchdogSec=``, when the watchdog is meant for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        interval_us = int(usec)
    except ValueError:
        return None
    return interval_us / 2 / 1_000_000 if interval_us > 0 else None


async def watchdog_loop(interval_s: float) -> None:
    """Ping the watchdog while the event loop runs: a loop that hangs stops
    the pings, and systemd restarts the daemon."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)
