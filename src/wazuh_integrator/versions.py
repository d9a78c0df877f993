"""``wazuh-integrator --version``: what a bug report needs to know about this install."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from wazuh_integrator import __version__

__all__ = ["REPORTED_PACKAGES", "version_report"]

# The libraries whose versions change how alerts are read and sent.
REPORTED_PACKAGES: tuple[str, ...] = ("aiohttp", "httptools", "orjson", "msgspec", "uvloop")


def _installed_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _system() -> str:
    libc, libc_version = platform.libc_ver()
    libc_text = f", {libc} {libc_version}" if libc else ""
    return f"{platform.system()} {platform.machine()}{libc_text}"


def version_report() -> str:
    """Our version, the Python we run on (and where), the system, the key libraries."""
    lines = [
        f"wazuh-integrator {__version__}",
        f"Python {platform.python_version()} ({platform.python_implementation()})"
        f" at {sys.executable}",
        f"System {_system()}",
    ]
    lines += [f"{package} {_installed_version(package)}" for package in REPORTED_PACKAGES]
    return "\n".join(lines)
