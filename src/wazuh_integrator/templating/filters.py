"""The filters templates get beyond Jinja2's own: what people need in alerts.

Each is a plain function of its value, so that tests can call it directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
from markupsafe import Markup

from wazuh_integrator.integrations.alert_fields import rule_level
from wazuh_integrator.integrations.flood_marks import digest_lines, digest_of, suppressed_of

__all__ = [
    "alert_link",
    "digest_lines",
    "digest_title",
    "iso_time",
    "level_name",
    "markdownv2",
    "markdownv2_code",
    "mitre",
    "rule_level",
    "suppressed_text",
    "to_json",
    "truncate",
]

# The bands the Wazuh dashboard uses for rule levels.
_LEVEL_BANDS = ((15, "critical"), (12, "high"), (7, "medium"), (0, "low"))
# Characters Telegram's MarkdownV2 reserves outside code (its Bot API docs).
_MARKDOWNV2_RESERVED = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")
_MARKDOWNV2_CODE_RESERVED = re.compile(r"([`\\])")
# Where alerts carry a link worth opening, most specific first.
_LINK_PATHS = (
    ("data", "virustotal", "permalink"),
    ("data", "url"),
    ("data", "link"),
)


class FilterError(ValueError):
    """A filter given a value it cannot work with; the message is shown as is."""


def level_name(value: Any) -> str:
    """``low``, ``medium``, ``high`` or ``critical`` for a rule level (a number,
    a numeric string, or a whole alert)."""
    if type(value) is dict or isinstance(value, Mapping):  # a dict skips the ABC's check
        rule = value.get("rule")
        value = (
            rule.get("level")
            if type(rule) is dict or isinstance(rule, Mapping)
            else value.get("level")
        )
    try:
        level = int(value)
    except (TypeError, ValueError):
        raise FilterError(f"level_name: {value!r} is not a rule level") from None
    return next(name for lowest, name in _LEVEL_BANDS if level >= lowest) if level >= 0 else "low"


def _mitre_of(value: Any) -> Mapping[str, Any]:
    """The ``mitre`` object of an alert or a rule, or ``value`` if it is one."""
    if not isinstance(value, Mapping):
        return {}
    if isinstance(value.get("rule"), Mapping):
        value = value["rule"]
    if "mitre" in value:
        found = value["mitre"]
        return found if isinstance(found, Mapping) else {}
    return value if {"id", "technique", "tactic"} & value.keys() and "level" not in value else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [] if value is None else [str(value)]


def mitre(value: Any) -> str:
    """The MITRE ATT&CK techniques and tactics of an alert, its rule or its
    ``mitre`` object: ``"T1110 Brute Force (Credential Access)"``; ``""`` when
    there are none."""
    found = _mitre_of(value)
    ids, techniques = _strings(found.get("id")), _strings(found.get("technique"))
    named = [" ".join(filter(None, pair)) for pair in zip(ids, techniques, strict=False)]
    named.extend(ids[len(techniques) :])
    tactics = ", ".join(_strings(found.get("tactic")))
    text = ", ".join(named)
    if tactics:
        text = f"{text} ({tactics})" if text else tactics
    return text


def truncate(value: Any, length: int = 255, end: str = "…") -> str:
    """``value`` as text, cut to at most ``length`` characters, ``end`` included
    when it is cut (Jinja2's own truncate keeps whole words and may run over)."""
    text = str(value)
    if length < len(end):
        raise FilterError(f"truncate: length {length} is shorter than the end {end!r}")
    if len(text) <= length:
        return text
    return text[: length - len(end)] + end


def to_json(value: Any, indent: int | None = None) -> Markup:
    """``value`` as JSON text, marked safe so that a ``json`` template writes it
    as a JSON value and does not escape it again."""
    option = orjson.OPT_INDENT_2 if indent else 0
    try:
        # str's own constructor decodes and makes the Markup in one step,
        # without Markup's __new__ looking for __html__ (JSON text has none).
        return str.__new__(
            Markup, orjson.dumps(value, default=_json_default, option=option), "utf-8"
        )
    except TypeError as exc:
        raise FilterError(f"tojson: {exc}") from None


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def iso_time(value: Any, format: str | None = None) -> str:
    """An alert's ``timestamp`` (``2024-05-01T10:20:30.123+0000``) or a Unix
    time as ISO 8601 (``2024-05-01T10:20:30.123000+00:00``), or formatted with
    ``format`` (strftime codes)."""
    moment: datetime
    if isinstance(value, bool):
        raise FilterError(f"iso_time: {value!r} is not a time")
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    elif isinstance(value, str):
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise FilterError(f"iso_time: {value!r} is not a time") from None
    else:
        raise FilterError(f"iso_time: {value!r} is not a time")
    return moment.strftime(format) if format else moment.isoformat()


def markdownv2(value: Any) -> Markup:
    """``value`` escaped for Telegram MarkdownV2 text (outside code)."""
    return Markup(_MARKDOWNV2_RESERVED.sub(r"\\\1", str(value)))


def markdownv2_code(value: Any) -> Markup:
    """``value`` escaped for the inside of a MarkdownV2 code or pre block."""
    return Markup(_MARKDOWNV2_CODE_RESERVED.sub(r"\\\1", str(value)))


def alert_link(alert: Any) -> str | None:
    """The first http(s) link the alert carries (a VirusTotal permalink,
    ``data.url``, ``data.link``), or None."""
    for path in _LINK_PATHS:
        found: Any = alert
        for key in path:
            found = found.get(key) if isinstance(found, Mapping) else None
        if isinstance(found, str) and found.startswith(("https://", "http://")):
            return found
    return None


def suppressed_text(alert: Any) -> str:
    """``3 similar alerts since <time>`` when a throttle held back alerts like
    this one before it was sent (docs/floods.md), else ``""``."""
    suppressed = suppressed_of(alert) if isinstance(alert, Mapping) else None
    return suppressed.text() if suppressed is not None else ""


def digest_title(document: Any) -> str:
    """``12 alerts for rule.id=5712`` for a digest (docs/floods.md), else ``""``."""
    header = digest_of(document) if isinstance(document, Mapping) else None
    if header is None:
        return ""
    return f"{document.get('count', '?')} alerts for {header.get('group', '?')}"
