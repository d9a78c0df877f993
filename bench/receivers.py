"""The receiver a scenario asks for: nginx when there is one, else ours."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from bench.nginx import Nginx
from bench.receiver_process import OurReceiver


class Receiver(Protocol):
    kind: str
    port: int

    def url(self, path: str) -> str: ...

    def served(self) -> int: ...

    def cpu_seconds(self) -> float: ...


def fast_receiver(nginx: str | None, port: int | None = None) -> AbstractContextManager[Receiver]:
    """nginx answering 200 at once; our receiver when nginx could not be had."""
    if nginx is not None:
        return Nginx(nginx, port)
    return OurReceiver(port or 0)
