"""Is the machine ready for the configuration? ``check-config --environment``.

Each check gives one verdict: the state directory usable by the user we run
as, alerts.json readable, analysisd's socket there when an enrichment needs
it, and every receiver's host resolvable and reachable (a TCP connection and,
for https, a TLS handshake; no request is sent). ``run`` makes the local
checks at start-up too.

Messages show a receiver as ``scheme://host:port`` only: the path and query
of a webhook URL are its secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from wazuh_integrator.source.opening import NotRegularFileError, open_regular

__all__ = [
    "RECEIVER_TIMEOUT_S",
    "Outcome",
    "Verdict",
    "check_alerts_file",
    "check_analysisd_socket",
    "check_receiver",
    "check_receivers",
    "check_state_dir",
]

RECEIVER_TIMEOUT_S = 5.0


class Outcome(enum.Enum):
    OK = "OK"
    WARNING = "WARN"
    FAILED = "FAIL"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome.value:<4}  {self.subject}: {self.detail}"


def _who() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def check_state_dir(path: Path) -> Verdict:
    """The state directory exists and takes a new file, or can be created."""
    subject = f"state directory {path}"
    try:
        exists = path.exists()
    except OSError as exc:  # a folder above it that we may not search
        return Verdict(
            Outcome.FAILED, subject, f"cannot be reached by {_who()}: {exc.strerror or exc}"
        )
    if exists:
        if not path.is_dir():
            return Verdict(Outcome.FAILED, subject, "exists but is not a directory")
        try:
            # Writing a file is the only test that counts (ACLs, read-only mounts).
            with tempfile.NamedTemporaryFile(dir=path, prefix=".check-"):
                pass
        except OSError as exc:
            return Verdict(
                Outcome.FAILED, subject, f"not writable by {_who()}: {exc.strerror or exc}"
            )
        return Verdict(Outcome.OK, subject, f"writable by {_who()}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        # Creating a directory there is the only test that counts (root, ACLs).
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".check-"))
    except OSError as exc:
        return Verdict(
            Outcome.FAILED,
            subject,
            f"does not exist, and {_who()} cannot create it in {parent}:"
            f" {exc.strerror or exc} (create it owned by that user, mode 700)",
        )
    return Verdict(Outcome.OK, subject, f"does not exist yet; {_who()} can create it")


def check_alerts_file(path: Path) -> Verdict:
    subject = f"alerts file {path}"
    try:
        # Without blocking: a FIFO in its place would hang the start-up here.
        descriptor, _ = open_regular(path)
    except FileNotFoundError:
        if path.parent.is_dir() and os.access(path.parent, os.R_OK | os.X_OK):
            return Verdict(
                Outcome.WARNING, subject, "not there yet; the daemon waits for Wazuh to write it"
            )
        return Verdict(Outcome.FAILED, subject, f"{path.parent} is missing or not readable")
    except NotRegularFileError as exc:
        return Verdict(Outcome.FAILED, subject, f"{exc.strerror}: alerts.json must be a file")
    except OSError as exc:
        return Verdict(Outcome.FAILED, subject, f"not readable by {_who()}: {exc.strerror or exc}")
    os.close(descriptor)
    return Verdict(Outcome.OK, subject, f"readable by {_who()}")


def check_analysisd_socket(path: Path, needed_by: Iterable[str]) -> Verdict | None:
    """analysisd's queue socket, when an enrichment sends its events there."""
    users = sorted(set(needed_by))
    if not users:
        return None
    subject = f"analysisd socket {path}"
    why = f" (needed by {', '.join(users)})"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return Verdict(Outcome.FAILED, subject, f"{exc.strerror or exc}{why}")
    if not stat.S_ISSOCK(mode):
        return Verdict(Outcome.FAILED, subject, f"not a socket{why}")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        return Verdict(
            Outcome.FAILED,
            subject,
            f"nobody listens ({exc.strerror or exc}): is wazuh-analysisd running?{why}",
        )
    finally:
        probe.close()
    return Verdict(Outcome.OK, subject, f"analysisd listens{why}")


def _shown(scheme: str, host: str, port: int) -> str:
    host_shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host_shown}:{port}"


async def check_receiver(
    key: str, url: str, *, timeout_s: float = RECEIVER_TIMEOUT_S, tls: ssl.SSLContext | None = None
) -> Verdict:
    """Resolve the host of ``url``, connect, and for https complete a TLS
    handshake (certificate and host name verified); no request is sent."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Verdict(Outcome.FAILED, f"{key} receiver", "hook_url is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return Verdict(
            Outcome.WARNING, f"{key} receiver", "not an http(s) URL with a host: not checked"
        )
    host = parts.hostname
    port = port or (443 if scheme == "https" else 80)
    subject = f"{key} receiver {_shown(scheme, host, port)}"
    loop = asyncio.get_running_loop()
    try:
        addresses = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
    # asyncio.TimeoutError is not the builtin one before Python 3.11.
    except (OSError, asyncio.TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else exc.strerror or exc
        return Verdict(Outcome.FAILED, subject, f"cannot resolve {host}: {reason}")
    context = None
    if scheme == "https":
        context = tls if tls is not None else ssl.create_default_context()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout_s
        )
    except ssl.SSLError as exc:
        return Verdict(Outcome.FAILED, subject, f"TLS handshake failed: {exc.reason or exc}")
    except asyncio.TimeoutError:
        return Verdict(Outcome.FAILED, subject, f"no connection within {timeout_s:g} s")
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return Verdict(Outcome.FAILED, subject, f"cannot connect: {reason}")
    writer.close()
    # The check is done; a peer closing abruptly does not change it.
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    handshake = ", TLS handshake done" if context is not None else ""
    return Verdict(
        Outcome.OK, subject, f"resolves ({len(addresses)} address(es)), connects{handshake}"
    )


async def check_receivers(
    receivers: Iterable[tuple[str, str]],
    *,
    timeout_s: float = RECEIVER_TIMEOUT_S,
    tls: Mapping[str, ssl.SSLContext] | None = None,
) -> list[Verdict]:
    """Every ``(key, url)`` checked at once, verdicts in the order given;
    ``tls`` holds the context of each key with its own TLS settings
    (``ca_file``, ``client_cert``), as the daemon would use it."""
    contexts = tls or {}
    return list(
        await asyncio.gather(
            *(
                check_receiver(key, url, timeout_s=timeout_s, tls=contexts.get(key))
                for key, url in receivers
            )
        )
    )
