"""Turns the chunks read from one file into complete lines with their positions.

No I/O here: the tailer reads big chunks and feeds them in. The common case
(no partial line longer than the limit) costs one ``bytes.split`` and a few
C-level ``map`` calls per chunk, with no Python loop over the lines.
"""

from __future__ import annotations

from itertools import accumulate, chain, repeat
from operator import add

from wazuh_integrator.source.positions import FileId, Line, Position


class LineSplitter:
    """Splits one file's bytes, fed in order from ``offset``, into lines.

    A line is complete once its newline has been fed. Until then its bytes are
    held (the *partial* line), unless it has grown past ``max_line_bytes``:
    from then on its bytes are dropped as they come, and it is produced as an
    ``oversize`` line with empty data once its newline arrives.
    """

    def __init__(self, file_id: FileId, path: str, offset: int, max_line_bytes: int) -> None:
        self._file_id = file_id
        self._path = path
        self._max_line_bytes = max_line_bytes
        self._line_start = Position(file_id, offset, path)
        self._partial: list[bytes] = []
        self._partial_len = 0
        self._skipping = False
        self.fed_offset = offset
        """Offset just past the last byte fed: where the next read continues."""

    @property
    def file_id(self) -> FileId:
        return self._file_id

    @property
    def path(self) -> str:
        return self._path

    @property
    def checkpoint(self) -> Position:
        """Just past the last complete line: where a restart would resume."""
        return self._line_start

    @property
    def partial_bytes(self) -> int:
        """How many bytes of an unfinished line have been fed."""
        return self._partial_len

    def feed(self, chunk: bytes) -> list[Line]:
        """Takes the next bytes of the file and returns the lines they complete."""
        self.fed_offset += len(chunk)
        parts = chunk.split(b"\n")
        tail = parts.pop()
        if not parts:
            self._hold(tail)
            return []
        if self._skipping or len(chunk) + self._partial_len > self._max_line_bytes:
            lines = self._split_checking_sizes(parts)
        else:
            lines = self._split_fast(parts)
        self._line_start = lines[-1].end
        self._partial = []
        self._partial_len = 0
        self._skipping = False
        self._hold(tail)
        return lines

    def renamed(self, path: str) -> None:
        """The file is at ``path`` now (rotated): lines read from here on name it there."""
        self._path = path
        self._line_start = Position(self._file_id, self._line_start.offset, path)

    def reset(self, offset: int) -> None:
        """Forgets the partial line and goes on from ``offset`` (after a truncation)."""
        self._line_start = Position(self._file_id, offset, self._path)
        self._partial = []
        self._partial_len = 0
        self._skipping = False
        self.fed_offset = offset

    def flush(self) -> Line | None:
        """Ends the unfinished last line, if any, as if a newline followed it.

        Only for a file that will never grow again (a rotated file): its end
        position is then the end of the file.
        """
        if not self._partial_len:
            return None
        end = Position(self._file_id, self.fed_offset, self._path)
        if self._skipping:
            line = Line(b"", self._line_start, end, True)
        else:
            line = Line(b"".join(self._partial), self._line_start, end)
        self._line_start = end
        self._partial = []
        self._partial_len = 0
        self._skipping = False
        return line

    def _hold(self, piece: bytes) -> None:
        if not piece:
            return
        self._partial_len += len(piece)
        if self._skipping:
            return
        if self._partial_len > self._max_line_bytes:
            self._skipping = True
            self._partial = []
        else:
            self._partial.append(piece)

    def _split_fast(self, parts: list[bytes]) -> list[Line]:
        """Every part is complete and none can be over the limit."""
        if self._partial:
            parts[0] = b"".join((*self._partial, parts[0]))
        count = len(parts)
        first = self._line_start.offset + 1
        # end offset of line i = start + (lengths of lines 0..i) + (i + 1) newlines
        end_offsets = map(add, accumulate(map(len, parts)), range(first, first + count))
        ends = list(map(Position, repeat(self._file_id, count), end_offsets, repeat(self._path)))
        return list(map(Line, parts, chain((self._line_start,), ends), ends))

    def _split_checking_sizes(self, parts: list[bytes]) -> list[Line]:
        """The slow path, line by line, when some line may be over the limit."""
        file_id, path, limit = self._file_id, self._path, self._max_line_bytes
        lines: list[Line] = []
        start = self._line_start
        for index, part in enumerate(parts):
            length = len(part)
            oversize = length > limit
            if index == 0:
                length += self._partial_len
                oversize = self._skipping or length > limit
                if not oversize and self._partial:
                    part = b"".join((*self._partial, part))
            end = Position(file_id, start.offset + length + 1, path)
            lines.append(Line(b"", start, end, True) if oversize else Line(part, start, end))
            start = end
        return lines
