"""The OSSEC simple regex, against REFERENCE.md's table and its algebra."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wazuh_integrator.sregex import (
    MAX_PATTERN_CHARS,
    SRegexError,
    ascii_lower,
    compile_sregex,
)

# (pattern, text, expected)
CASES = [
    # plain substring
    ("web01", "web01", True),
    ("web01", "/var/log/web01/access.log", True),
    ("web01", "web0", False),
    ("web01", "", False),
    ("secure", "/var/log/secure", True),
    ("a b", "xa by", True),
    ("a b", "ab", False),
    # anchors
    ("^/var", "/var/log/secure", True),
    ("^/var", "x/var/log", False),
    ("^/var", "/va", False),
    ("secure$", "/var/log/secure", True),
    ("secure$", "/var/log/secure.1", False),
    ("^/var/log/secure$", "/var/log/secure", True),
    ("^/var/log/secure$", "/var/log/secure2", False),
    ("^/var/log/secure$", "x/var/log/secure", False),
    ("^abc$", "abc", True),
    ("^abc$", "abcabc", False),
    ("^a", "a", True),
    ("a$", "a", True),
    ("^ab", "a", False),
    ("ab$", "b", False),
    # anchors in the middle are plain characters
    ("a^b", "a^b", True),
    ("a^b", "ab", False),
    ("a$b", "xa$by", True),
    ("a$b", "ab", False),
    ("$abc", "$abc", True),
    ("$abc", "abc", False),
    ("abc^", "abc^", True),
    ("abc^", "abc", False),
    ("^^a", "^a", True),
    ("^^a", "a", False),
    ("a$$", "a$", True),
    ("a$$", "a", False),
    ("^$$", "$", True),
    ("^$$", "", False),
    ("^^$", "^", True),
    ("^^$", "", False),
    # alternatives
    ("web01|web02", "web02", True),
    ("web01|web02", "web03", False),
    ("^a|b$", "axx", True),
    ("^a|b$", "xxb", True),
    ("^a|b$", "xbx", False),
    ("^a$|^b$", "b", True),
    ("^a$|^b$", "ab", False),
    ("a|^b|c$|^d$", "xxc", True),
    ("a|^b|c$|^d$", "d", True),
    ("a|^b|c$|^d$", "dd", False),
    ("a||b", "zzz", True),
    # empty alternatives match everything
    ("a|", "zzz", True),
    ("|a", "zzz", True),
    ("|", "", True),
    ("|", "anything", True),
    ("", "", True),
    ("", "anything", True),
    # ^ or $ alone match everything
    ("^", "", True),
    ("^", "anything", True),
    ("$", "", True),
    ("$", "anything", True),
    ("a|^", "zzz", True),
    ("$|a", "zzz", True),
    # ^$ matches only the empty text
    ("^$", "", True),
    ("^$", "a", False),
    ("^$", " ", False),
    ("^$|a", "a", True),
    ("^$|a", "b", False),
    # negation
    ("!web01", "web01", False),
    ("!web01", "web02", True),
    ("!^/var", "/var/log", False),
    ("!^/var", "/tmp", True),
    ("!a|b", "a", False),
    ("!a|b", "b", False),
    ("!a|b", "c", True),
    ("!^$", "", False),
    ("!^$", "x", True),
    ("!", "", False),
    ("!", "anything", False),
    ("!a|", "zzz", False),
    ("!^", "zzz", False),
    ("!$", "", False),
    # "!" anywhere but first is a plain character
    ("!!a", "!a", False),
    ("!!a", "a", True),
    ("a!", "a!", True),
    ("a!", "a", False),
    ("a|!b", "!b", True),
    ("a|!b", "b", False),
    ("^!a", "!ab", True),
    ("^!a", "ab", False),
    # "|" cannot be escaped: backslash is a plain character
    ("a\\|b", "a\\", True),
    ("a\\|b", "b", True),
    ("a\\|b", "a|b", True),
    ("a\\|b", "a", False),
    ("\\", "c:\\x", True),
    # no other regex syntax
    ("a.c", "abc", False),
    ("a.c", "a.c", True),
    ("a*", "aaa", False),
    ("a*", "a*", True),
    ("(web01)", "web01", False),
    ("^(web01)", "(web01) 10.0.0.1->syscheck", True),
    ("[0-9]", "5", False),
    ("\\d", "5", False),
    # ASCII case is ignored, on both sides
    ("WEB01", "web01", True),
    ("web01", "WEB01", True),
    ("^/VAR/Log$", "/var/LOG", True),
    ("!WEB", "web", False),
    ("SECURE$", "/var/log/Secure", True),
    # non-ASCII case is not
    ("é", "É", False),
    ("É", "é", False),
    ("é", "é", True),
    ("straße", "STRASSE", False),
    ("k", "\u212a", False),  # KELVIN SIGN, which str.lower folds to "k"
    ("i", "\u0130", False),  # İ, which str.lower folds to "i̇"
    ("\u212a", "k", False),
    ("ß", "ß", True),
    ("ÄB", "äb", False),
    ("ÄB", "Äb", True),
    # stock matches bytes; on valid UTF-8 a match of characters is the same
    ("é", "café", True),
    ("^é", "écho", True),
    ("é$", "café", True),
    ("^CAFé$", "café", True),
    ("^CAFÉ$", "café", False),
    ("\u00e9", "e\u0301", False),  # no Unicode normalisation either
    # stock switches to a case-sensitive strstr when the pattern holds the
    # byte 0xE3 (as in "あ", E3 81 82); REFERENCE.md says ASCII case is
    # ignored, and it wins
    ("web|あ", "WEB01", True),
    ("WEBあ", "webあ", True),
    # more edges of the anchors and alternatives
    ("^|", "anything", True),
    ("||", "", True),
    ("!|", "x", False),
    ("!^a$|b", "a", False),
    ("!^a$|b", "ab", False),
    ("!^a$|b", "ac", True),
    ("^a|b$", "ab", True),
    # real Wazuh locations
    ("^(web01)", "(web01) 192.168.1.10->/var/log/secure", True),
    ("->syscheck$", "(web01) any->syscheck", True),
    ("->syscheck$", "syscheck", False),
    ("^/var/ossec/logs/active-responses.log$", "/var/ossec/logs/active-responses.log", True),
    ("EventChannel", "EventChannel", True),
    ("rootcheck|syscheck", "(db) 10.1.1.1->rootcheck", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), CASES)
def test_match_table(pattern: str, text: str, expected: bool) -> None:
    assert compile_sregex(pattern).match(text) is expected


@pytest.mark.parametrize(
    "pattern",
    ["x" * MAX_PATTERN_CHARS, "!" + "x" * (MAX_PATTERN_CHARS - 1), "|" * MAX_PATTERN_CHARS],
)
def test_longest_allowed_pattern_compiles(pattern: str) -> None:
    assert compile_sregex(pattern).pattern == pattern


@pytest.mark.parametrize("pattern", ["x" * (MAX_PATTERN_CHARS + 1), "!" + "x" * MAX_PATTERN_CHARS])
def test_too_long_pattern_is_an_error(pattern: str) -> None:
    with pytest.raises(SRegexError) as raised:
        compile_sregex(pattern)
    assert str(raised.value) == (
        f"pattern is {MAX_PATTERN_CHARS + 1} characters long; at most 20480 are allowed"
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("é" * 10_240, None),
        ("é" * 10_240 + "x", "pattern is 20481 bytes long in UTF-8; at most 20480 are allowed"),
        ("€" * 6_827, "pattern is 20481 bytes long in UTF-8; at most 20480 are allowed"),
    ],
)
def test_size_is_counted_in_utf8_bytes_like_stock(pattern: str, message: str | None) -> None:
    if message is None:
        assert compile_sregex(pattern).match("é" * 10_240)
    else:
        with pytest.raises(SRegexError, match=f"^{message}$"):
            compile_sregex(pattern)


def test_error_is_a_value_error() -> None:
    assert issubclass(SRegexError, ValueError)


def test_pattern_is_kept_as_written() -> None:
    compiled = compile_sregex("!^WEB|Db$")
    assert compiled.pattern == "!^WEB|Db$"
    assert compiled == compile_sregex("!^WEB|Db$")
    assert compiled != compile_sregex("!^web|db$")
    assert repr(compiled) == "compile_sregex('!^WEB|Db$')"


@pytest.mark.parametrize(
    ("text", "folded"),
    [("ABCxyz", "abcxyz"), ("ÉCOLE", "École"), ("\u212a", "\u212a"), ("İ", "İ"), ("", "")],
)
def test_ascii_lower_folds_ascii_only(text: str, folded: str) -> None:
    assert ascii_lower(text) == folded


# --- properties -------------------------------------------------------------

# Small alphabets make collisions (and so matches) likely; the special
# characters are the ones with meaning, plus letters in both cases and some
# non-ASCII letters that str.lower would fold.
_SPECIAL = st.sampled_from(list("^$!|"))
_LETTERS = st.sampled_from(list("abAB.\\ éÉ\u212ak"))
_PLAIN_TEXT = st.text(_LETTERS, max_size=8)
_PATTERN = st.text(st.one_of(_LETTERS, _SPECIAL), max_size=10)


def _oracle(pattern: str, text: str) -> bool:
    """An independent reading of REFERENCE.md, one character at a time."""

    def fold(s: str) -> str:
        return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)

    negate = pattern[:1] == "!"
    body = fold(pattern[1:] if negate else pattern)
    subject = fold(text)
    hit = False
    for alt in body.split("|"):
        start = alt[:1] == "^"
        end = alt[-1:] == "$" and (len(alt) >= 2 or not start)
        core = alt[1 if start else 0 : len(alt) - 1 if end else len(alt)]
        if start and end:
            hit |= subject == core
        elif start:
            hit |= subject[: len(core)] == core
        elif end:
            hit |= len(subject) >= len(core) and subject[len(subject) - len(core) :] == core
        else:
            hit |= any(subject[i : i + len(core)] == core for i in range(len(subject) + 1))
    return hit != negate


@given(_PATTERN, _PLAIN_TEXT)
def test_agrees_with_an_independent_oracle(pattern: str, text: str) -> None:
    assert compile_sregex(pattern).match(text) is _oracle(pattern, text)


@given(_PATTERN.filter(lambda p: not p.startswith("!")), _PLAIN_TEXT)
def test_negation_is_the_complement(pattern: str, text: str) -> None:
    assert compile_sregex("!" + pattern).match(text) is not compile_sregex(pattern).match(text)


_ALTERNATIVE = st.text(st.one_of(_LETTERS, st.sampled_from(list("^$!"))), max_size=5)


@given(
    st.lists(_ALTERNATIVE, min_size=2, max_size=4).filter(lambda a: a[0][:1] != "!"), _PLAIN_TEXT
)
def test_alternatives_match_iff_any_one_matches(alternatives: list[str], text: str) -> None:
    whole = compile_sregex("|".join(alternatives)).match(text)
    assert whole is any(_alone(alt, text) for alt in alternatives)


def _alone(alternative: str, text: str) -> bool:
    """Whether one alternative matches when it is not first in the pattern."""
    if alternative.startswith("!"):
        # Alone it would be a negation; "!!x" negates the plain "!x".
        return not compile_sregex("!" + alternative).match(text)
    return compile_sregex(alternative).match(text)


@given(_PATTERN, _PLAIN_TEXT)
def test_ascii_case_is_ignored(pattern: str, text: str) -> None:
    compiled = compile_sregex(pattern)
    expected = compiled.match(text)
    assert compiled.match(_ascii_swapcase(text)) is expected
    assert compile_sregex(_ascii_swapcase(pattern)).match(text) is expected


def _ascii_swapcase(s: str) -> str:
    return "".join(c.swapcase() if c.isascii() else c for c in s)


@given(_PLAIN_TEXT, _PLAIN_TEXT)
def test_plain_pattern_is_an_ascii_case_insensitive_substring_test(pattern: str, text: str) -> None:
    assert compile_sregex(pattern).match(text) is (ascii_lower(pattern) in ascii_lower(text))


@given(st.text(max_size=12), st.text(max_size=12))
def test_any_text_compiles_and_matches_without_error(pattern: str, text: str) -> None:
    assert isinstance(compile_sregex(pattern).match(text), bool)
