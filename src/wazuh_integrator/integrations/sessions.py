"""The HTTP sessions integrations send with, and the TLS each one trusts.

Every HTTP integration (built-in, plugin or a future output) gets its session
from here, so the TLS settings of ``[integrations.<name>]`` in
integrator.toml apply to all of them alike: certificates are always verified;
``ca_file`` replaces the system's trusted CAs for that integration with the
given ones; ``client_cert`` and ``client_key`` present a client certificate
(mutual TLS). Integrations with the same TLS settings share one session, and
so its connection pool, and one lean HTTP/1.1 pool (:mod:`.http1`) that
:func:`~wazuh_integrator.integrations.http.send_body` prefers for webhooks.
With ``http_processes`` above zero, those pools run in HTTP transport
processes (:mod:`.transport`) rather than in the daemon.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import aiohttp

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.integrations.http1 import Http1Pool, attach_pool
from wazuh_integrator.integrations.transport import IN_PROCESS_BELOW, HttpProcesses
from wazuh_integrator.tls import ssl_context

__all__ = ["HttpSessions"]

_TlsKey = tuple[Path | None, Path | None, Path | None]


class HttpSessions:
    """The daemon's HTTP sessions: one for the defaults, one per distinct TLS setting."""

    def __init__(self, http_processes: int = 0, *, in_process_below: int | None = None) -> None:
        """``http_processes``: how many HTTP transport processes send the
        webhooks' requests; 0 sends them from this process. ``in_process_below``:
        with fewer requests in flight, they are sent from here all the same
        (None: :data:`~.transport.IN_PROCESS_BELOW`; 0: never)."""
        self._sessions: dict[_TlsKey, aiohttp.ClientSession] = {}
        self._pools: list[Http1Pool] = []
        below = IN_PROCESS_BELOW if in_process_below is None else in_process_below
        self._processes = HttpProcesses(http_processes, below) if http_processes > 0 else None

    @property
    def processes(self) -> HttpProcesses | None:
        """The HTTP transport processes; None when requests are sent from here."""
        return self._processes

    def for_settings(self, settings: IntegrationSettings) -> aiohttp.ClientSession:
        key = (settings.ca_file, settings.client_cert, settings.client_key)
        session = self._sessions.get(key)
        if session is None:
            context = ssl_context(*key)
            connector = aiohttp.TCPConnector(
                limit=0, ttl_dns_cache=300, ssl=context if context is not None else True
            )
            session = self._sessions[key] = aiohttp.ClientSession(connector=connector)
            if self._processes is not None:
                attach_pool(session, self._processes.pool(key))
            else:
                pool = Http1Pool(context)
                attach_pool(session, pool)
                self._pools.append(pool)
        return session

    async def close(self) -> None:
        if self._processes is not None:
            await self._processes.close()
        for pool in self._pools:
            await pool.close()
        self._pools.clear()
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def __aenter__(self) -> HttpSessions:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
