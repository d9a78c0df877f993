"""The line splitter on its own: chunks in, complete lines with positions out."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from wazuh_integrator.source import FileId, Line, Position
from wazuh_integrator.source.splitter import LineSplitter

FILE = FileId(1, 2)
PATH = "/var/ossec/logs/alerts/alerts.json"


def at(offset: int) -> Position:
    return Position(FILE, offset, PATH)


def feed_all(splitter: LineSplitter, chunks: list[bytes]) -> list[Line]:
    return [line for chunk in chunks for line in splitter.feed(chunk)]


def test_complete_lines_carry_their_start_and_end() -> None:
    splitter = LineSplitter(FILE, PATH, 100, max_line_bytes=1024)

    lines = splitter.feed(b'{"a":1}\n{"b":22}\n')

    assert lines == [
        Line(b'{"a":1}', at(100), at(108)),
        Line(b'{"b":22}', at(108), at(117)),
    ]
    assert splitter.checkpoint == at(117)
    assert splitter.fed_offset == 117


def test_a_line_written_in_pieces_comes_out_once_complete() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=1024)

    assert splitter.feed(b'{"rule":') == []
    assert splitter.feed(b'{"level":') == []
    assert splitter.partial_bytes == 17
    lines = splitter.feed(b"3}}\nnext")

    assert lines == [Line(b'{"rule":{"level":3}}', at(0), at(21))]
    assert splitter.checkpoint == at(21)
    assert splitter.partial_bytes == 4


def test_empty_lines_are_lines() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=1024)

    assert splitter.feed(b"\n\nx\n") == [
        Line(b"", at(0), at(1)),
        Line(b"", at(1), at(2)),
        Line(b"x", at(2), at(4)),
    ]


def test_an_oversize_line_is_skipped_with_its_positions() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=4)

    lines = feed_all(splitter, [b"abcd\nabc", b"de", b"fghij", b"\nxy\n"])

    assert lines == [
        Line(b"abcd", at(0), at(5)),
        Line(b"", at(5), at(16), oversize=True),
        Line(b"xy", at(16), at(19)),
    ]


def test_an_oversize_partial_line_is_not_held() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=4)

    splitter.feed(b"x" * 1000)
    splitter.feed(b"y" * 1000)

    assert splitter.partial_bytes == 2000
    assert splitter.flush() == Line(b"", at(0), at(2000), oversize=True)


def test_flush_ends_an_unterminated_last_line() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=1024)
    splitter.feed(b"one\ntw")
    splitter.feed(b"o")

    assert splitter.flush() == Line(b"two", at(4), at(7))
    assert splitter.flush() is None
    assert splitter.checkpoint == at(7)


def test_reset_forgets_the_partial_line() -> None:
    splitter = LineSplitter(FILE, PATH, 0, max_line_bytes=1024)
    splitter.feed(b"one\nhalf")

    splitter.reset(0)

    assert splitter.feed(b"new\n") == [Line(b"new", at(0), at(4))]


@settings(deadline=None)  # CI machines are shared: a slow example is not a failure
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
    max_line_bytes=st.integers(min_value=0, max_value=50),
    base=st.integers(min_value=0, max_value=10_000),
)
def test_any_chunking_gives_the_same_lines(
    lines: list[bytes], cuts: list[int], max_line_bytes: int, base: int
) -> None:
    data = b"".join(line + b"\n" for line in lines)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    chunks = [data[a:b] for a, b in pairwise(bounds)]
    splitter = LineSplitter(FILE, PATH, base, max_line_bytes=max_line_bytes)

    got = feed_all(splitter, chunks)

    expected = []
    offset = base
    for line in lines:
        end = offset + len(line) + 1
        oversize = len(line) > max_line_bytes
        expected.append(Line(b"" if oversize else line, at(offset), at(end), oversize))
        offset = end
    assert got == expected
    assert splitter.checkpoint == at(base + len(data))
    assert splitter.flush() is None
