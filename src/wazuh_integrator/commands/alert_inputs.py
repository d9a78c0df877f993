"""Alerts given to ``test``: JSON lines as in alerts.json, or pretty-printed
objects one after another, read as a stream.

JSON lines are read one at a time, so a file of any size costs the memory of
its longest line. Lines end at ``\\n`` only, as analysisd writes them: a
``\\r`` or a Unicode line separator inside an alert's text is data. Pretty-
printed input (its first non-blank line is a lone ``{``) is read whole: such
files are written by hand and small.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from wazuh_integrator.nesting import MAX_NESTING, NestingError, check_nesting

__all__ = ["STDIN_NAME", "AlertInput", "read_alert_inputs", "read_sources"]

STDIN_NAME = "<stdin>"
_TOO_DEEP = f"not valid JSON: nested more than {MAX_NESTING} levels deep"


@dataclass(frozen=True)
class AlertInput:
    """One alert read from ``where`` (``file:line``), or why it could not be."""

    where: str
    alert: dict[str, Any] | None = None
    error: str | None = None


_JSON_KINDS = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _not_an_object(where: str, value: object) -> AlertInput:
    kind = _JSON_KINDS.get(type(value), "a number")
    return AlertInput(where, error=f"{where}: not a JSON object but {kind}")


def _checked(where: str, value: Any) -> AlertInput:
    """``value`` as an alert, unless it is not an object or nests too deeply
    (the daemon's rule: such a line is skipped, docs/source.md)."""
    if not isinstance(value, dict):
        return _not_an_object(where, value)
    try:
        check_nesting(value)
    except NestingError:
        return AlertInput(where, error=f"{where}: {_TOO_DEEP}")
    return AlertInput(where, alert=value)


def read_alert_inputs(name: str, source: IO[bytes]) -> Iterator[AlertInput]:
    """The alerts of ``source``, a binary stream, one at a time."""
    head: list[bytes] = []
    for raw in source:  # a binary stream splits on b"\n" only
        head.append(raw)
        if raw.strip():
            break
    first = head[-1].strip() if head else b""
    if first.startswith(b"{") and not _is_json(first):
        text = b"".join(head) + source.read()
        yield from _read_documents(name, text.decode("utf-8", errors="replace"))
        return
    yield from _read_lines(name, itertools.chain(head, source))


def _read_lines(name: str, lines: Iterable[bytes]) -> Iterator[AlertInput]:
    for number, raw in enumerate(lines, start=1):
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield AlertInput(
                where, error=f"{where}: not valid JSON: {exc.msg} (column {exc.colno})"
            )
            continue
        except RecursionError:
            yield AlertInput(where, error=f"{where}: {_TOO_DEEP}")
            continue
        yield _checked(where, value)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    except RecursionError:
        return True  # JSON, too deep to read: a line of its own, refused as such
    return True


def _read_documents(name: str, text: str) -> Iterator[AlertInput]:
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        where = f"{name}:{text.count(chr(10), 0, position) + 1}"
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            # Nothing after a broken document can be trusted to start cleanly.
            yield AlertInput(
                where, error=f"{name}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
            )
            return
        except RecursionError:
            yield AlertInput(where, error=f"{where}: {_TOO_DEEP}")
            return
        yield _checked(where, value)


def read_sources(files: list[str]) -> Iterator[AlertInput]:
    """The alerts of every file in order (``-``, or no file at all: stdin)."""
    for name in files or ["-"]:
        if name == "-":
            yield from read_alert_inputs(STDIN_NAME, sys.stdin.buffer)
            continue
        try:
            source = open(name, "rb")  # noqa: SIM115 - closed below, after the generator
        except OSError as exc:
            yield AlertInput(name, error=f"{name}: cannot read: {exc.strerror or exc}")
            continue
        with source:
            yield from read_alert_inputs(name, source)
