"""The bundle's target defaults, apart from :mod:`.bundle` so that ``--help``
can show them without importing ``packaging`` on every start of the daemon."""

from __future__ import annotations

__all__ = ["ARCHITECTURES", "DEFAULT_GLIBC", "DEFAULT_PYTHON"]

# Every Wazuh 4.x manager carries CPython 3.10 under /var/ossec/framework/python.
DEFAULT_PYTHON = "3.10"
ARCHITECTURES = ("x86_64", "aarch64")
# glibc 2.17 (manylinux2014) installs on every Linux Wazuh 4.x supports.
DEFAULT_GLIBC = "2.17"
