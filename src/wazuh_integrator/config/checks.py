"""Warnings: what ossec.conf allows but is probably not what its author meant.

A warning never disables anything; ``check-config`` shows it and the daemon
logs it once at start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import ConfigIssue
from wazuh_integrator.secret import redact_url

HIGHEST_RULE_LEVEL = 16

# Built-ins that POST to or query <hook_url> themselves (scripts may use it freely).
_HTTP_HOOK_INTEGRATIONS = frozenset({"slack", "shuffle", "maltiverse"})


@dataclass(frozen=True)
class ElementText:
    """The raw text of one element of a block, where it was written."""

    text: str
    line: int


def block_warnings(
    path: str, block: IntegrationBlock, raw: Mapping[str, ElementText]
) -> list[ConfigIssue]:
    """Warnings about one valid block, located at the element concerned."""
    warnings: list[ConfigIssue] = []
    group = raw.get("group")
    if group is not None and _spaces_around_commas(group.text):
        warnings.append(
            ConfigIssue(
                path,
                group.line,
                "group",
                "spaces around commas: we trim them, but stock Wazuh compares each item "
                "with its spaces and never matches it; write "
                f"'{','.join(block.groups)}'",
            )
        )
    level = raw.get("level")
    if level is not None and block.level is not None and block.level > HIGHEST_RULE_LEVEL:
        warnings.append(
            ConfigIssue(
                path,
                level.line,
                "level",
                f"{block.level} is above {HIGHEST_RULE_LEVEL}, the highest rule level: "
                "no alert will ever match",
            )
        )
    hook = raw.get("hook_url")
    if hook is not None:
        problem = _hook_url_problem(block.name, hook.text)
        if problem:
            warnings.append(ConfigIssue(path, hook.line, "hook_url", problem))
    alert_format = raw.get("alert_format")
    if (
        alert_format is not None
        and alert_format.text != "json"
        and alert_format.text.lower() == "json"
    ):
        warnings.append(
            ConfigIssue(
                path,
                alert_format.line,
                "alert_format",
                f"'{alert_format.text}' is not 'json' (the comparison is case-sensitive): "
                "the legacy text format is used",
            )
        )
    return warnings


def repeated_block_warnings(path: str, blocks: Sequence[IntegrationBlock]) -> list[ConfigIssue]:
    """A block identical to an earlier one sends every alert twice."""
    warnings: list[ConfigIssue] = []
    first_line: dict[tuple[object, ...], int] = {}
    for block in blocks:
        signature = _signature(block)
        if signature in first_line:
            warnings.append(
                ConfigIssue(
                    path,
                    block.line,
                    "integration",
                    f"same as the block at line {first_line[signature]}: "
                    "every matching alert is delivered twice",
                )
            )
        else:
            first_line[signature] = block.line
    return warnings


def _spaces_around_commas(text: str) -> bool:
    items = text.split(",")
    return len(items) > 1 and any(item != item.strip() for item in items)


def _hook_url_problem(name: str, url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        if name in _HTTP_HOOK_INTEGRATIONS:
            return f"not an http(s) URL: {name} cannot reach it"
        return None
    if parts.scheme == "http" and not _is_loopback(host):
        return (
            f"{redact_url(url)} is plain http: alerts would cross the network unencrypted; "
            "use https"
        )
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _signature(block: IntegrationBlock) -> tuple[object, ...]:
    options = None
    if block.options is not None:
        options = repr(sorted(block.options.items(), key=lambda item: item[0]))
    return (
        block.name,
        block.hook_url,
        block.api_key,
        block.alert_format,
        block.level,
        tuple(sorted(block.rule_ids)),
        tuple(sorted(block.groups)),
        block.event_location,
        options,
        block.max_log,
        block.timeout_s,
        block.retries,
    )
