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
from wazuh_integrator.filters import c_atoi
from wazuh_integrator.secret import redact_url

HIGHEST_RULE_LEVEL = 16

# Built-ins that POST to or query <hook_url> themselves (scripts may use it freely).
# Outputs whose <hook_url> is not http(s): smtp://, smtps://; udp://, tcp://, tls://.
_OWN_SCHEME_OUTPUTS = frozenset({"email", "syslog"})
_HTTP_HOOK_INTEGRATIONS = frozenset(
    {
        "slack", "shuffle", "maltiverse", "webhook", "teams", "telegram", "discord", "jira",
        "opsgenie", "thehive",
    }
)  # fmt: skip


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
    if group is not None:
        warnings.extend(
            ConfigIssue(path, group.line, "group", message)
            for message in _group_problems(group.text, block.groups)
        )
    level = raw.get("level")
    if level is not None and block.level is not None:
        problem = _level_problem(block.level)
        if problem:
            warnings.append(ConfigIssue(path, level.line, "level", problem))
    hook = raw.get("hook_url")
    if hook is not None:
        problem = _hook_url_problem(block.name, hook.text, block.options)
        if problem:
            warnings.append(ConfigIssue(path, hook.line, "hook_url", problem))
    alert_format = raw.get("alert_format")
    if (
        alert_format is not None
        and alert_format.text != "json"
        and alert_format.text.strip().lower() == "json"
    ):
        warnings.append(
            ConfigIssue(
                path,
                alert_format.line,
                "alert_format",
                f"{alert_format.text!r} is not 'json' (the comparison is exact and "
                "case-sensitive): the legacy text format is used",
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


def _group_problems(text: str, groups: tuple[str, ...]) -> list[str]:
    problems = []
    items = text.split(",")
    if any(item != item.strip() for item in items if item.strip()):
        where = "around commas" if len(items) > 1 else "around the group name"
        problems.append(
            f"spaces {where}: we trim them, but stock Wazuh compares each item "
            "with its spaces and never matches it; write "
            f"'{','.join(group for group in groups if group)}'"
        )
    if "" in groups:
        problems.append(
            "an empty item: like stock, it matches only an alert with an empty group name"
        )
    return problems


def _level_problem(level: int) -> str | None:
    # Stock stores <level> with atoi in a C unsigned int, where 0 means unset.
    as_stock = (c_atoi(str(level)) or 0) & 0xFFFF_FFFF
    if as_stock != level:
        outcome = "no level filter" if as_stock == 0 else f"level {as_stock}"
        return f"{level} does not fit a C unsigned int: stock reads it as {as_stock} ({outcome})"
    if level > HIGHEST_RULE_LEVEL:
        return (
            f"{level} is above {HIGHEST_RULE_LEVEL}, the highest rule level: "
            "no alert will ever match"
        )
    return None


def _hook_url_problem(name: str, url: str, options: Mapping[str, object] | None) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is not None and host and not _is_loopback(host):
        unencrypted = _unencrypted_transport(name, parts.scheme, options)
        if unencrypted:
            return unencrypted
    if name in _OWN_SCHEME_OUTPUTS:
        return None  # another scheme disables the block, with the schemes it takes
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


def _unencrypted_transport(
    name: str, scheme: str, options: Mapping[str, object] | None
) -> str | None:
    """The warning for an email or syslog output that may send in clear text."""
    if name == "email" and scheme == "smtp" and not (options or {}).get("require_tls"):
        return (
            "smtp:// sends in clear text to a server that offers no STARTTLS: "
            'set "require_tls": true in <options>, or use smtps://'
        )
    if name == "syslog" and scheme in ("udp", "tcp"):
        return (
            f"{scheme}:// is plain syslog: alerts would cross the network unencrypted; use tls://"
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
