"""TLS client settings for the outputs that open their own connections
(SMTP, syslog over TLS); HTTP outputs use the session's.

Paths are relative to the Wazuh home, like every other path in the
configuration. The context verifies the server's certificate and name
against the system's CAs, or ``ca_file`` when set.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from wazuh_integrator.integrations.options import OptionsError, OptionsReader

__all__ = ["TlsFiles"]


@dataclass(frozen=True)
class TlsFiles:
    """``ca_file``, ``client_cert`` and ``client_key`` from a block's options."""

    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def read(cls, options: OptionsReader) -> TlsFiles:
        files = cls(
            options.text("ca_file"), options.text("client_cert"), options.text("client_key")
        )
        if files.client_key and not files.client_cert:
            raise OptionsError('options: "client_key" needs "client_cert"')
        return files

    def context(self, home: Path) -> ssl.SSLContext:
        """A verifying client context. Raises OptionsError naming an unreadable file."""
        try:
            context = ssl.create_default_context(
                cafile=str(home / self.ca_file) if self.ca_file else None
            )
            if self.client_cert:
                context.load_cert_chain(
                    str(home / self.client_cert),
                    str(home / self.client_key) if self.client_key else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise OptionsError(f"options: TLS files cannot be used: {exc}") from None
        return context
