"""A strict RFC 5424 parser for the tests: header, structured data and MSG,
each checked against the ABNF of RFC 5424 section 6, and the octet-counting
framing of RFC 6587. Anything out of the grammar raises ValueError."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

_PRI = re.compile(r"<(0|[1-9][0-9]{0,2})>([1-9][0-9]{0,2}) ")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_HEADER_LIMITS = (("hostname", 255), ("app_name", 48), ("procid", 128), ("msgid", 32))


@dataclass
class SyslogMessage:
    facility: int
    severity: int
    version: int
    timestamp: datetime | None
    hostname: str | None
    app_name: str | None
    procid: str | None
    msgid: str | None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    msg: str | None = None


def _printusascii(text: str) -> bool:
    return all(33 <= ord(char) <= 126 for char in text)


def _sd_name(text: str) -> bool:
    return 0 < len(text) <= 32 and _printusascii(text) and not any(c in text for c in '= ]"')


def _field(text: str, position: int, name: str, limit: int) -> tuple[str | None, int]:
    end = text.find(" ", position)
    if end < 0:
        raise ValueError(f"{name}: no space after it")
    value = text[position:end]
    if not value or len(value) > limit or not _printusascii(value):
        raise ValueError(f"{name}: {value!r} is not 1-{limit} PRINTUSASCII characters")
    return (None if value == "-" else value), end + 1


def _structured_data(text: str, position: int) -> tuple[dict[str, dict[str, str]], int]:
    if text.startswith("-", position):
        return {}, position + 1
    elements: dict[str, dict[str, str]] = {}
    while position < len(text) and text[position] == "[":
        position += 1
        end = position
        while end < len(text) and text[end] not in " ]":
            end += 1
        sd_id = text[position:end]
        if not _sd_name(sd_id):
            raise ValueError(f"SD-ID {sd_id!r} is not an SD-NAME")
        if sd_id in elements:
            raise ValueError(f"SD-ID {sd_id!r} appears twice")
        params: dict[str, str] = {}
        position = end
        while text[position] == " ":
            position += 1
            equals = text.find("=", position)
            name = text[position:equals]
            if equals < 0 or not _sd_name(name):
                raise ValueError(f"PARAM-NAME {name!r} is not an SD-NAME")
            if text[equals + 1 : equals + 2] != '"':
                raise ValueError(f"PARAM-VALUE of {name} does not start with a quote")
            position = equals + 2
            value = []
            while True:
                if position >= len(text):
                    raise ValueError(f"PARAM-VALUE of {name} never ends")
                char = text[position]
                if char == "\\" and text[position + 1 : position + 2] in ('"', "\\", "]"):
                    value.append(text[position + 1])
                    position += 2
                elif char == '"':
                    position += 1
                    break
                elif char == "]":
                    raise ValueError(f"PARAM-VALUE of {name} holds an unescaped ']'")
                else:
                    value.append(char)
                    position += 1
            params[name] = "".join(value)
        if text[position] != "]":
            raise ValueError(f"SD-ELEMENT {sd_id} does not end with ']'")
        position += 1
        elements[sd_id] = params
    if not elements:
        raise ValueError("STRUCTURED-DATA is neither '-' nor an SD-ELEMENT")
    return elements, position


def parse(line: str | bytes) -> SyslogMessage:
    text = line.decode("utf-8") if isinstance(line, bytes) else line
    header = _PRI.match(text)
    if header is None:
        raise ValueError(f"no PRI and VERSION at the start of {text[:40]!r}")
    prival, version = int(header.group(1)), int(header.group(2))
    if prival > 191:
        raise ValueError(f"PRIVAL {prival} is above 191")
    position = header.end()
    end = text.find(" ", position)
    stamp_text = text[position:end]
    timestamp = None
    if stamp_text != "-":
        if not _TIMESTAMP.fullmatch(stamp_text):
            raise ValueError(f"TIMESTAMP {stamp_text!r} is not RFC 3339 as RFC 5424 allows")
        timestamp = datetime.fromisoformat(stamp_text.replace("Z", "+00:00"))
    position = end + 1
    values = {}
    for name, limit in _HEADER_LIMITS:
        values[name], position = _field(text, position, name, limit)
    structured, position = _structured_data(text, position)
    msg = None
    if position < len(text):
        if text[position] != " ":
            raise ValueError("no space between STRUCTURED-DATA and MSG")
        msg = text[position + 1 :]
        if msg.startswith("\ufeff"):
            msg = msg[1:]
    return SyslogMessage(
        prival // 8, prival % 8, version, timestamp, structured_data=structured, msg=msg, **values
    )


def split_octet_counted(stream: bytes) -> tuple[list[bytes], bytes]:
    """The whole frames in ``stream`` (``MSG-LEN SP SYSLOG-MSG``) and the rest."""
    frames = []
    while stream:
        space = stream.find(b" ")
        if space < 0:
            break
        length_text = stream[:space]
        if not re.fullmatch(rb"[1-9][0-9]*", length_text):
            raise ValueError(f"MSG-LEN {length_text[:20]!r} is not a number")
        length = int(length_text)
        if len(stream) < space + 1 + length:
            break
        frames.append(stream[space + 1 : space + 1 + length])
        stream = stream[space + 1 + length :]
    return frames, stream
