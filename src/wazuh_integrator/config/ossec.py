"""Reads the ``<integration>`` blocks of ossec.conf, collecting every problem.

ossec.conf is not one well-formed XML document: it may hold several
``<ossec_config>`` roots. We wrap the text in a synthetic root written on the
file's first line, so that expat's line numbers are the file's own, and parse
it into a small tree that remembers where each element opened. Sections other
than ``<integration>`` are ignored.

Nothing here raises for a content problem: each one becomes a
:class:`~wazuh_integrator.errors.ConfigIssue` in :class:`OssecConfig`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from wazuh_integrator.config.checks import (
    ElementText,
    block_warnings,
    repeated_block_warnings,
)
from wazuh_integrator.config.models import IntegrationBlock, InvalidBlock, OssecConfig
from wazuh_integrator.errors import ConfigIssue
from wazuh_integrator.secret import Secret
from wazuh_integrator.sregex import SRegexError, compile_sregex

__all__ = ["read_ossec_conf"]

_ROOT = "wazuh-integrator-synthetic-root"
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
# Wazuh's own reader takes a bare "&" (say, in a hook_url's query) literally;
# expat would reject it, so it is escaped, leaving real references alone.
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z_][\w.-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")
_DIGITS = re.compile(r"[0-9]+")
_SHOWN_VALUE_CHARS = 40
_MISMATCHED_TAG = next(
    code for code, message in expat.errors.messages.items() if message == "mismatched tag"
)


@dataclass
class _Node:
    tag: str
    line: int
    children: list[_Node] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()


class _Invalid(ValueError):
    """A value that does not fit its element; the message is shown as is."""


def read_ossec_conf(path: Path, *, display_path: str | None = None) -> OssecConfig:
    """Every ``<integration>`` block of ``path``, with every error and warning found."""
    shown = display_path if display_path is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return OssecConfig(path, errors=(ConfigIssue(shown, None, None, f"cannot read: {reason}"),))
    root, syntax_error = _parse_tree(raw.decode("utf-8-sig", errors="replace"))
    reader = _BlockReader(shown)
    for top in root.children:
        if top.tag != "ossec_config":
            continue
        for section in top.children:
            if section.tag == "integration":
                reader.read(section)
    errors = list(reader.errors)
    if syntax_error is not None:
        line, message = syntax_error
        errors.insert(0, ConfigIssue(shown, line, None, message))
    warnings = reader.warnings + repeated_block_warnings(shown, reader.blocks)
    if syntax_error is None and reader.count == 0:
        warnings.append(
            ConfigIssue(shown, None, None, "no <integration> block: nothing will be delivered")
        )
    return OssecConfig(
        path,
        blocks=tuple(reader.blocks),
        errors=tuple(errors),
        warnings=tuple(warnings),
        invalid_blocks=tuple(reader.invalid),
    )


# -- XML ------------------------------------------------------------------


def _parse_tree(text: str) -> tuple[_Node, tuple[int, str] | None]:
    """The element tree of ``text`` and the syntax error that stopped it, if any.

    Elements completed before a syntax error are kept, so that check-config can
    still list the blocks it saw.
    """
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        # Keep the declaration's newlines so that every later line keeps its number.
        text = re.sub(r"[^\n]", " ", declaration.group(0)) + text[declaration.end() :]
    text = _BARE_AMPERSAND.sub("&amp;", text)
    root = _Node(_ROOT, 1)
    stack: list[_Node] = []
    parser = expat.ParserCreate()

    def start(tag: str, _attributes: dict[str, str]) -> None:
        if not stack:  # our synthetic root
            stack.append(root)
            return
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def characters(data: str) -> None:
        stack[-1].text_parts.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    last_line = text.count("\n") + 1
    opening = f"<{_ROOT}>"
    try:
        parser.Parse(f"{opening}{text}</{_ROOT}>", True)
    except expat.ExpatError as exc:
        unclosed = stack[1:]
        if unclosed and exc.lineno >= last_line and exc.code == _MISMATCHED_TAG:
            # The error is at our synthetic closing tag: the file left an element open.
            node = unclosed[-1]
            return root, (node.line, f"XML syntax error: <{node.tag}> is never closed")
        reason = expat.errors.messages[exc.code]
        column = exc.offset + 1 - (len(opening) if exc.lineno == 1 else 0)
        return root, (exc.lineno, f"XML syntax error: {reason} (column {column})")
    return root, None


# -- <integration> blocks -----------------------------------------------------


def _shown(text: str) -> str:
    if len(text) > _SHOWN_VALUE_CHARS:
        text = text[: _SHOWN_VALUE_CHARS - 3] + "..."
    return f"'{text}'"


def _as_int(text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise _Invalid(f"{_shown(text)} is not a number")
    return int(text)


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _as_int(text)
        if not low <= value <= high:
            raise _Invalid(f"{value} is out of range {low}-{high}")
        return value

    return parse


def _as_rule_ids(text: str) -> tuple[int, ...]:
    ids = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not _DIGITS.fullmatch(item):
            raise _Invalid(f"{_shown(item)} is not a rule id (an integer)")
        ids.append(int(item))
    if not ids:
        raise _Invalid(f"no rule id in {_shown(text)}")
    return tuple(ids)


def _as_groups(text: str) -> tuple[str, ...]:
    groups = tuple(item.strip() for item in text.split(",") if item.strip())
    if not groups:
        raise _Invalid(f"no group in {_shown(text)}")
    return groups


def _as_sregex(text: str) -> str:
    try:
        compile_sregex(text)
    except SRegexError as exc:
        raise _Invalid(f"does not compile: {exc}") from exc
    return text


_JSON_TYPE_NAMES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _as_options(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: options may hold credentials of their own.
        raise _Invalid(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), "a number")
        raise _Invalid(f"must be a JSON object, not {kind}")
    return value


# Element name -> (IntegrationBlock field, parser). Secrets are wrapped at once
# and never appear in a message.
_ELEMENTS: dict[str, tuple[str, Callable[[str], object]]] = {
    "name": ("name", str),
    "hook_url": ("hook_url", Secret),
    "api_key": ("api_key", Secret),
    "alert_format": ("alert_format", str),
    "level": ("level", _as_int),
    "rule_id": ("rule_ids", _as_rule_ids),
    "group": ("groups", _as_groups),
    "event_location": ("event_location", _as_sregex),
    "options": ("options", _as_options),
    "max_log": ("max_log", _int_in(165, 1024)),
    "timeout": ("timeout_s", _int_in(1, 3600)),
    "retries": ("retries", _int_in(0, 100)),
}


class _BlockReader:
    """Turns ``<integration>`` nodes into blocks, errors and warnings, in file order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self.blocks: list[IntegrationBlock] = []
        self.invalid: list[InvalidBlock] = []
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def _error(self, line: int, element: str, message: str) -> None:
        self.errors.append(ConfigIssue(self.path, line, element, message))

    def read(self, node: _Node) -> None:
        index = self.count
        self.count += 1
        errors_before = len(self.errors)
        raw: dict[str, ElementText] = {}
        values: dict[str, object] = {}
        for child in node.children:
            if not self._accept(child, raw):
                continue
            field_name, parse = _ELEMENTS[child.tag]
            try:
                values[field_name] = parse(child.text)
            except _Invalid as exc:
                self._error(child.line, child.tag, str(exc))
        if "name" not in raw:
            self._error(node.line, "integration", "missing <name>")
        name = raw["name"].text or None if "name" in raw else None
        if len(self.errors) > errors_before:
            self.invalid.append(InvalidBlock(index, node.line, name))
            return
        block = IntegrationBlock(index=index, path=self.path, line=node.line, **values)  # type: ignore[arg-type]
        self.blocks.append(block)
        self.warnings.extend(block_warnings(self.path, block, raw))

    def _accept(self, child: _Node, raw: dict[str, ElementText]) -> bool:
        """Whether ``child`` is a known, single, non-empty element holding text."""
        if child.tag not in _ELEMENTS:
            expected = ", ".join(_ELEMENTS)
            self._error(child.line, child.tag, f"unknown element (expected one of: {expected})")
            return False
        if child.tag in raw:
            first = raw[child.tag].line
            self._error(child.line, child.tag, f"duplicated element (first at line {first})")
            return False
        raw[child.tag] = ElementText(child.text, child.line)
        if child.children:
            self._error(child.line, child.tag, f"must hold text, not <{child.children[0].tag}>")
            return False
        if not child.text:
            self._error(child.line, child.tag, "empty element")
            return False
        return True
