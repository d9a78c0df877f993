"""Recognising the indicators worth looking up: well-formed hashes, public addresses."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

__all__ = [
    "alert_field",
    "is_md5",
    "is_public_ip",
    "is_sha1",
    "is_single_case_md5",
    "url_sha256",
]

_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_SINGLE_CASE_MD5 = re.compile(r"[0-9a-f]{32}|[0-9A-F]{32}")
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")


def is_md5(value: object) -> bool:
    """True for exactly 32 hexadecimal digits, either case, nothing around them."""
    return isinstance(value, str) and _MD5.fullmatch(value) is not None


def is_single_case_md5(value: object) -> bool:
    """True for exactly 32 hexadecimal digits, all lower case or all upper case.

    What stock's VirusTotal script accepts (around it, nothing): a hash whose
    letters mix both cases is not looked up there, so not here either.
    """
    return isinstance(value, str) and _SINGLE_CASE_MD5.fullmatch(value) is not None


def is_sha1(value: object) -> bool:
    """True for exactly 40 hexadecimal digits, either case, nothing around them."""
    return isinstance(value, str) and _SHA1.fullmatch(value) is not None


def is_public_ip(value: object) -> bool:
    """True for an IPv4 or IPv6 address that a threat feed can know about.

    Private, loopback, link-local, multicast, reserved and unspecified
    addresses (and the rest of what is not globally routable, such as the
    carrier-grade NAT range) are only ever seen inside some network: looking
    them up would leak them and return nothing useful. An IPv4-mapped IPv6
    address is judged by its IPv4 address.
    """
    if not isinstance(value, str):
        return False
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def url_sha256(url: str) -> str:
    """The key Maltiverse files a URL under: the hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def alert_field(alert: dict[str, Any], section: str, name: str) -> Any:
    """``alert[section][name]``, or None when either level is missing or not a mapping."""
    container = alert.get(section)
    return container.get(name) if isinstance(container, dict) else None
