"""nginx as the cheapest real HTTP receiver: ``return 200`` for every POST.

Started by the benchmark on 127.0.0.1 with its own configuration in a
temporary directory, in the foreground (``daemon off``) so that we own its
process. ``/nginx_status`` (stub_status) counts the requests it served; its
CPU time is read from /proc for the master and its worker.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from bench import procfs

log = logging.getLogger(__name__)

STATUS_PATH = "/nginx_status"
_CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        location = {status} {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _installed() -> str | None:
    sbin = Path("/usr/sbin/nginx")  # not on a non-root PATH
    return shutil.which("nginx") or (str(sbin) if sbin.exists() else None)


def nginx_binary() -> str | None:
    """nginx's path, installing Debian's nginx-light once when it is missing."""
    found = _installed()
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    log.info("nginx is missing: installing Debian's nginx-light")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    subprocess.run(["apt-get", "update", "-q"], timeout=300, **quiet)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        ["apt-get", "install", "-y", "-q", "nginx-light"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        timeout=600,
        **quiet,
    )
    return _installed()


class Nginx:
    """One nginx on ``127.0.0.1:port``; use as a context manager."""

    kind = "nginx"

    def __init__(self, binary: str, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self._root = Path(tempfile.mkdtemp(prefix="wi-bench-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._status_polls = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Nginx:
        user = "user root;\n" if os.geteuid() == 0 else ""
        config = self._root / "nginx.conf"
        config.write_text(
            _CONFIG.format(user=user, root=self._root, port=self.port, status=STATUS_PATH)
        )
        self._process = subprocess.Popen(
            [self.binary, "-c", str(config), "-p", str(self._root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.served()
                break
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(
                        f"nginx did not start: {(self._root / 'error.log').read_text()}"
                    ) from None
                time.sleep(0.02)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._root, ignore_errors=True)

    def served(self) -> int:
        """Requests served so far, not counting our own status polls."""
        with urllib.request.urlopen(self.url(STATUS_PATH), timeout=5) as answer:
            text = answer.read().decode()
        self._status_polls += 1
        # "server accepts handled requests\n A B C": C counts this poll too.
        match = re.search(r"\n\s*\d+\s+\d+\s+(\d+)", text)
        if match is None:
            raise RuntimeError(f"unexpected stub_status answer: {text!r}")
        return int(match.group(1)) - self._status_polls

    def cpu_seconds(self) -> float:
        """CPU time of the master and its workers so far."""
        if self._process is None:
            return 0.0
        pid = self._process.pid
        return procfs.cpu_seconds(pid) + sum(procfs.cpu_seconds(c) for c in procfs.children(pid))
