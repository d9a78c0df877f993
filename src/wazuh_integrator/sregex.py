"""OSSEC "simple regex" (sregex), the pattern language of ``<event_location>``.

The semantics are those REFERENCE.md states for the stock daemon:

* ``a|b`` matches when any alternative matches; ``|`` cannot be escaped;
* ``^abc`` anchors at the start, ``abc$`` at the end, ``^abc$`` is the whole text;
  anything else is a substring test, and an empty alternative matches everything;
* ``^`` or ``$`` alone match everything; ``^$`` matches only the empty text;
* a leading ``!`` negates the whole pattern (elsewhere ``!`` is a plain character),
  so ``!`` alone matches nothing;
* case is ignored for ASCII letters only;
* a pattern longer than :data:`MAX_PATTERN_CHARS` characters is an error
  (counted in UTF-8 bytes, as stock does).

Patterns are compiled once into sets of prefixes, suffixes, whole texts and
substrings, so that matching is a handful of C-level string operations.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_PATTERN_CHARS", "SRegex", "SRegexError", "ascii_lower", "compile_sregex"]

MAX_PATTERN_CHARS: Final = 20_480

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class SRegexError(ValueError):
    """A pattern that cannot be compiled; the message says why."""


def ascii_lower(text: str) -> str:
    """Fold ``A``-``Z`` to ``a``-``z`` and nothing else, like C's ``tolower``.

    ``str.lower`` also folds non-ASCII letters (``É`` → ``é``, ``K`` (Kelvin) →
    ``k``), which the stock matcher does not do.
    """
    if text.isascii():
        return text.lower()
    return text.translate(_ASCII_LOWER)


class SRegex:
    """A compiled sregex. Build it with :func:`compile_sregex`."""

    __slots__ = (
        "_always",
        "_negate",
        "_prefixes",
        "_single",
        "_substrings",
        "_suffixes",
        "_wholes",
        "pattern",
    )

    def __init__(
        self,
        pattern: str,
        *,
        negate: bool,
        always: bool,
        wholes: frozenset[str],
        prefixes: tuple[str, ...],
        suffixes: tuple[str, ...],
        substrings: tuple[str, ...],
    ) -> None:
        self.pattern: Final = pattern
        self._negate = negate
        self._always = always
        self._wholes = wholes
        self._prefixes = prefixes
        self._suffixes = suffixes
        self._substrings = substrings
        # The common case is one plain substring (``<event_location>web01``):
        # keep it apart so that match() is one ``in``.
        self._single = (
            substrings[0] if len(substrings) == 1 and not (wholes or prefixes or suffixes) else None
        )

    def match(self, text: str) -> bool:
        """Whether ``text`` matches, ASCII case ignored."""
        if self._always:
            return not self._negate
        folded = ascii_lower(text)
        single = self._single
        if single is not None:
            return (single in folded) is not self._negate
        found = (
            folded in self._wholes
            or folded.startswith(self._prefixes)
            or folded.endswith(self._suffixes)
            or any(part in folded for part in self._substrings)
        )
        return found is not self._negate

    def __repr__(self) -> str:
        return f"compile_sregex({self.pattern!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SRegex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)


def _check_size(pattern: str) -> None:
    # Stock measures the pattern with strlen, in bytes: "é" counts twice.
    if pattern.isascii():
        size, unit = len(pattern), "characters long"
    else:
        size, unit = len(pattern.encode("utf-8", "surrogatepass")), "bytes long in UTF-8"
    if size > MAX_PATTERN_CHARS:
        raise SRegexError(f"pattern is {size} {unit}; at most {MAX_PATTERN_CHARS} are allowed")


def compile_sregex(pattern: str) -> SRegex:
    """Compile an sregex; raise :class:`SRegexError` when it is too long."""
    _check_size(pattern)
    negate = pattern.startswith("!")
    body = ascii_lower(pattern[1:] if negate else pattern)

    always = False
    wholes: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    substrings: list[str] = []
    for alternative in body.split("|"):
        # "^" alone is a start anchor on "", and "$" alone an end anchor on "":
        # both match everything, like an empty alternative.
        if alternative.startswith("^"):
            if len(alternative) >= 2 and alternative.endswith("$"):
                wholes.add(alternative[1:-1])
                continue
            literal = alternative[1:]
            target = prefixes
        elif alternative.endswith("$"):
            literal = alternative[:-1]
            target = suffixes
        else:
            literal = alternative
            target = substrings
        if not literal:
            always = True
        elif literal not in target:
            target.append(literal)

    return SRegex(
        pattern,
        negate=negate,
        always=always,
        wholes=frozenset(wholes),
        prefixes=tuple(prefixes),
        suffixes=tuple(suffixes),
        substrings=tuple(substrings),
    )
