"""Reads the ``<integration>`` blocks of ossec.conf, collecting every problem.

ossec.conf is not one well-formed XML document: it may hold several
``<ossec_config>`` roots. We wrap the text in a synthetic root written on the
file's first line, so that expat's line numbers are the file's own, and parse
it into a small tree that remembers where each element opened. Sections other
than ``<integration>`` are ignored.

Values are read the way stock Wazuh's own XML reader and its ``<integration>``
reader take them, wherever that is not an error there:

* text is taken as written: no XML entity (``&amp;``, ``&#60;``) is decoded,
  ``\\<`` stands for itself, and nothing is trimmed, so ``<name> slack</name>``
  is not ``slack`` and ``<level> 5</level>`` is not a number. Only ``hook_url``
  and ``api_key`` are trimmed (stock splits its command line on spaces, a bug
  we do not copy), and ``<group>`` items (a deliberate difference, warned);
* a comment runs from ``<!`` to the first ``-->`` or ``!>``, so ``--`` may
  appear inside it;
* ``<rule_id>`` is read like stock reads it (see :func:`_as_rule_ids`);
* an element given twice is not an error: the last one wins, except
  ``<rule_id>``, whose ids add up; check-config warns.

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
from wazuh_integrator.filters import c_atoi
from wazuh_integrator.nesting import MAX_NESTING, NestingError, check_nesting
from wazuh_integrator.secret import Secret
from wazuh_integrator.sregex import SRegexError, compile_sregex

__all__ = ["count_integration_blocks", "read_ossec_conf"]

_ROOT = "wazuh-integrator-synthetic-root"
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*\?>")
# What Wazuh's own XML reader takes literally and expat would not: every "&"
# (no entity is decoded there) and "\<". CDATA is left to expat; a stock
# comment (from "<!" to the first "-->" or "!>") becomes one expat accepts.
_LITERAL_MARKUP = re.compile(r"(<!\[CDATA\[.*?\]\]>)|<!(.*?)(?:!>|-->)|(&)|\\<", re.DOTALL)
_DIGITS = re.compile(r"[0-9]+")
_CLOSING_TAG = re.compile(r"</\s*([^\s>]+)")
_UINT_MASK = 0xFFFF_FFFF
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
        return "".join(self.text_parts)


class _Invalid(ValueError):
    """A value that does not fit its element; the message is shown as is."""


_OUTSIDE_ROOT = (
    "outside <ossec_config>: Wazuh does not read it there, nor do we;"
    " put the blocks between <ossec_config> and </ossec_config>"
)


def count_integration_blocks(path: Path) -> int:
    """How many ``<integration>`` blocks a manager would read in ``path``
    (inside ``<ossec_config>``, valid or not); 0 when it cannot be read."""
    config = read_ossec_conf(path)
    return len(config.blocks) + len(config.invalid_blocks)


def moved_blocks_hint(path: Path) -> str | None:
    """When ``path`` has an ``integrations.conf`` beside it, where the cutover
    (docs/migrating.md) moves the blocks: how to read that one instead."""
    moved = path.parent / "integrations.conf"
    if moved != path and moved.is_file():
        return f"the blocks of {moved} are read with --config {moved}"
    return None


def _no_blocks(path: Path) -> str:
    hint = moved_blocks_hint(path)
    message = "no <integration> block: nothing will be delivered"
    return message if hint is None else f"{message}; {hint}"


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
    outside: list[ConfigIssue] = []
    for top in root.children:
        if top.tag == "integration":
            outside.append(ConfigIssue(shown, top.line, "integration", _OUTSIDE_ROOT))
        if top.tag != "ossec_config":
            continue
        for section in top.children:
            if section.tag == "integration":
                reader.read(section)
    errors = outside + list(reader.errors)
    if syntax_error is not None:
        line, message = syntax_error
        errors.insert(0, ConfigIssue(shown, line, None, message))
    warnings = reader.warnings + repeated_block_warnings(shown, reader.blocks)
    if syntax_error is None and reader.count == 0 and not outside:
        warnings.append(ConfigIssue(shown, None, None, _no_blocks(path)))
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
    text = _LITERAL_MARKUP.sub(_expat_literal, text)
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
        if exc.code == _MISMATCHED_TAG and unclosed:
            reason = _mismatch(text, exc.lineno, column, unclosed[-1])
        return root, (exc.lineno, f"XML syntax error: {reason} (column {column})")
    return root, None


def _mismatch(text: str, line: int, column: int, open_node: _Node) -> str:
    """expat's "mismatched tag", with the closing tag found and the element it fails to close."""
    lines = text.split("\n")
    where = lines[line - 1] if line <= len(lines) else ""
    # expat points at the tag's name; its "</" is just before.
    found = _CLOSING_TAG.match(where, max(where.rfind("</", 0, column + 1), 0))
    closing = f"</{found.group(1)}>" if found else "a closing tag"
    return f"{closing} does not close <{open_node.tag}>, opened at line {open_node.line}"


def _expat_literal(found: re.Match[str]) -> str:
    cdata, comment, ampersand = found.group(1, 2, 3)
    if cdata is not None:
        return cdata
    if comment is not None:
        # Keep its newlines, so that every later line keeps its number.
        return "<!--" + re.sub(r"[^\n]", " ", comment) + "-->"
    if ampersand is not None:
        return "&amp;"
    return "\\&lt;"


# -- <integration> blocks -----------------------------------------------------


def _shown(text: str) -> str:
    if len(text) > _SHOWN_VALUE_CHARS:
        text = text[: _SHOWN_VALUE_CHARS - 3] + "..."
    return f"'{text}'"


def _as_int(text: str) -> int:
    # Stock's test (OS_StrIsNum): ASCII digits only, no sign, no spaces.
    if not _DIGITS.fullmatch(text):
        raise _Invalid(f"{_shown(text)} is not a number")
    return int(text)


def _as_unsigned(text: str) -> int:
    """``text`` as stock stores it: ``atoi`` into a C ``unsigned int``."""
    value = c_atoi(text)
    assert value is not None  # _as_int has checked the digits
    return value & _UINT_MASK


def _int_in(low: int, high: int, *, stock_wraps: bool = False) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _as_int(text)
        if stock_wraps:
            value = _as_unsigned(text)
        if not low <= value <= high:
            raise _Invalid(f"{_as_int(text)} is out of range {low}-{high}")
        return value

    return parse


@dataclass(frozen=True)
class _RuleIds:
    """What stock's reader takes from one ``<rule_id>``, and what it skips."""

    ids: tuple[int, ...]
    skipped: tuple[str, ...]


def _as_rule_ids(text: str) -> _RuleIds:
    """Read ``<rule_id>`` like stock: spaces and commas are skipped; at a digit
    the id is ``atoi`` of the text from there, and reading goes on after the
    next comma (what lies before it is skipped; with no comma, the rest is);
    at any other character reading stops, and the rest is skipped. Nothing
    here is an error in stock: what it skips is warned about."""
    ids: list[int] = []
    skipped: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char in " ,":
            at += 1
            continue
        digits = _DIGITS.match(text, at)
        if digits is None:
            skipped.append(text[at:])
            break
        ids.append(int(digits.group()))
        comma = text.find(",", at)
        rest = text[digits.end() : comma if comma >= 0 else len(text)]
        if rest.strip(" "):
            skipped.append(rest.strip(" "))
        if comma < 0:
            break
        at = comma + 1
    return _RuleIds(tuple(ids), tuple(skipped))


def _as_groups(text: str) -> tuple[str, ...]:
    # Stock compares every item, an empty one too, except an empty last one
    # ("a," is "a"); we trim spaces around items, a deliberate difference.
    items = text.split(",")
    if len(items) > 1 and not items[-1]:
        items.pop()
    return tuple(item.strip() for item in items)


def _as_secret(text: str) -> Secret:
    return Secret(text.strip())


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
    except RecursionError:
        raise _Invalid(f"not valid JSON: nested more than {MAX_NESTING} levels deep") from None
    if not isinstance(value, dict):
        kind = _JSON_TYPE_NAMES.get(type(value), "a number")
        raise _Invalid(f"must be a JSON object, not {kind}")
    try:
        check_nesting(value)
    except NestingError as exc:
        raise _Invalid(f"not valid JSON: {exc}") from None
    return value


# Element name -> (IntegrationBlock field, parser). Secrets are wrapped at once
# and never appear in a message. Stock's limits on <timeout> and <retries> are
# not known to us: ours stay.
_ELEMENTS: dict[str, tuple[str, Callable[[str], object]]] = {
    "name": ("name", str),
    "hook_url": ("hook_url", _as_secret),
    "api_key": ("api_key", _as_secret),
    "alert_format": ("alert_format", str),
    "level": ("level", _as_int),
    "rule_id": ("rule_ids", _as_rule_ids),
    "group": ("groups", _as_groups),
    "event_location": ("event_location", _as_sregex),
    "options": ("options", _as_options),
    "max_log": ("max_log", _int_in(165, 1024, stock_wraps=True)),
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
        first_line: dict[str, int] = {}
        values: dict[str, object] = {}
        rule_ids: list[int] = []
        notes: list[ConfigIssue] = []
        for child in node.children:
            if not self._accept(child):
                continue
            raw[child.tag] = ElementText(child.text, child.line)
            if child.tag in first_line:
                notes.append(self._repeated(child, first_line[child.tag]))
            else:
                first_line[child.tag] = child.line
            field_name, parse = _ELEMENTS[child.tag]
            try:
                value = parse(child.text)
            except _Invalid as exc:
                self._error(child.line, child.tag, str(exc))
                continue
            if isinstance(value, _RuleIds):
                rule_ids.extend(value.ids)
                notes.extend(self._rule_id_notes(child, value))
                value = tuple(rule_ids)
            values[field_name] = value
        if not any(child.tag == "name" for child in node.children):
            self._error(node.line, "integration", "missing <name>")
        name = raw["name"].text or None if "name" in raw else None
        if len(self.errors) > errors_before:
            self.invalid.append(InvalidBlock(index, node.line, name))
            return
        block = IntegrationBlock(index=index, path=self.path, line=node.line, **values)  # type: ignore[arg-type]
        self.blocks.append(block)
        self.warnings.extend(notes)
        self.warnings.extend(block_warnings(self.path, block, raw))

    def _repeated(self, child: _Node, first: int) -> ConfigIssue:
        if child.tag == "rule_id":
            outcome = "like stock, the ids of every <rule_id> are used"
        else:
            outcome = "like stock, the last one is used"
        return ConfigIssue(
            self.path, child.line, child.tag, f"repeated element (first at line {first}): {outcome}"
        )

    def _rule_id_notes(self, child: _Node, read: _RuleIds) -> list[ConfigIssue]:
        messages = [
            f"{_shown(part)} is skipped, as stock does: write numbers separated by commas"
            for part in read.skipped
        ]
        if not read.ids:
            messages.append(
                f"no rule id in {_shown(child.text)}: like stock, this <rule_id> filters nothing"
            )
        for rule_id in read.ids:
            as_stock = c_atoi(str(rule_id))
            if as_stock == 0:
                messages.append(
                    f"{rule_id} is read as 0 by stock, which ends its list there: "
                    "it never matches, and with no other id no alert passes"
                )
            elif as_stock != rule_id:
                messages.append(f"{rule_id} does not fit a C int: stock reads it as {as_stock}")
        return [ConfigIssue(self.path, child.line, child.tag, text) for text in messages]

    def _accept(self, child: _Node) -> bool:
        """Whether ``child`` is a known, non-empty element holding text."""
        if child.tag not in _ELEMENTS:
            expected = ", ".join(_ELEMENTS)
            self._error(child.line, child.tag, f"unknown element (expected one of: {expected})")
            return False
        if child.children:
            self._error(child.line, child.tag, f"must hold text, not <{child.children[0].tag}>")
            return False
        text = child.text.strip() if child.tag in _TRIMMED else child.text
        if not text:
            self._error(child.line, child.tag, "empty element")
            return False
        return True


# Trimmed before use: stock would split its command line on their spaces.
_TRIMMED = frozenset({"hook_url", "api_key"})
