"""TLS contexts from the settings of integrator.toml: verified always, a
private CA and a client certificate when configured."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["TlsError", "ssl_context"]


class TlsError(ValueError):
    """A CA file or client certificate that cannot be loaded; the message says which."""


def ssl_context(
    ca_file: Path | None, client_cert: Path | None, client_key: Path | None
) -> ssl.SSLContext | None:
    """The verifying context for these settings; None for the defaults
    (aiohttp's own: the system's CAs, certificates and host names verified)."""
    if ca_file is None and client_cert is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load CA file {ca_file}: {_reason(exc)}") from None
    if client_cert is not None:
        try:
            context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
        except (OSError, ssl.SSLError) as exc:
            shown = f"{client_cert}" + (f" with key {client_key}" if client_key else "")
            raise TlsError(f"cannot load client certificate {shown}: {_reason(exc)}") from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return exc.strerror or str(exc)
