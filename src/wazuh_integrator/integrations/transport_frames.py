"""The frames the daemon and its HTTP transport processes exchange.

Every frame is ``<u32 length><u8 kind><payload>``, the length counting kind
and payload; numbers are little-endian. Nothing is pickled: a frame holds
numbers, text and bytes only, and an error crosses as its kind, its type's
name and its text, rebuilt on the daemon's side from a fixed list of types
(:func:`rebuild_error`) so that :func:`~wazuh_integrator.classify.classify_exception`
sees what it would have seen in process.

Daemon to transport: TARGET registers where requests go (once per target and
process), REQUEST sends a body there. Transport to daemon: READY once it runs,
then an ANSWER or an ERROR per request.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from pathlib import Path

from wazuh_integrator.integrations.http1 import Answer, BadAnswer, ServerDisconnected, Target

__all__ = [
    "ANSWER",
    "ERROR",
    "ERROR_OS",
    "ERROR_OTHER",
    "ERROR_TIMEOUT",
    "READY",
    "REQUEST",
    "TARGET",
    "FrameReader",
    "FrameWriter",
    "TlsPaths",
    "answer_frame",
    "error_frame",
    "error_of",
    "read_answer",
    "read_error",
    "read_request",
    "read_target",
    "rebuild_error",
    "request_head",
    "target_frame",
]

TARGET = 1
REQUEST = 2
READY = 3
ANSWER = 4
ERROR = 5

ERROR_TIMEOUT = 0  # asyncio.TimeoutError: no answer within the request's time
ERROR_OS = 1  # an OSError: socket, TLS, ours (ServerDisconnected, BadAnswer)
ERROR_OTHER = 2  # anything else (a bug): reaches the daemon as an OSError

# (ca_file, client_cert, client_key), as HttpSessions keys its sessions.
TlsPaths = tuple["Path | None", "Path | None", "Path | None"]

_HEADER = struct.Struct("<IB")
_TARGET = struct.Struct("<IBH")
_REQUEST = struct.Struct("<IBIId")
_REQUEST_FIELDS = struct.Struct("<IId")
_ANSWER = struct.Struct("<IBIHh")
_ANSWER_FIELDS = struct.Struct("<IHh")
_ERROR = struct.Struct("<IBIBH")
_ERROR_FIELDS = struct.Struct("<IBH")
_TEXT = struct.Struct("<h")  # a text's length; -1 for None

# The types an error may come back as; any other name comes back as an
# OSError whose text starts with the name, still a connection failure.
_ERROR_TYPES: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (
        OSError,
        ConnectionError,
        ConnectionRefusedError,
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
        TimeoutError,
        socket.gaierror,
        socket.herror,
        ssl.SSLError,
        ssl.SSLCertVerificationError,
        ssl.SSLZeroReturnError,
        ssl.SSLEOFError,
        ssl.SSLSyscallError,
        ServerDisconnected,
        BadAnswer,
    )
}
_SSL_ERRORS = frozenset(name for name, cls in _ERROR_TYPES.items() if issubclass(cls, ssl.SSLError))


def _text(value: str | None) -> bytes:
    if value is None:
        return _TEXT.pack(-1)
    encoded = value.encode("utf-8", "surrogateescape")
    return _TEXT.pack(len(encoded)) + encoded


def _read_text(payload: bytes, offset: int) -> tuple[str | None, int]:
    (size,) = _TEXT.unpack_from(payload, offset)
    offset += _TEXT.size
    if size < 0:
        return None, offset
    return payload[offset : offset + size].decode("utf-8", "surrogateescape"), offset + size


def _frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload) + 1, kind) + payload


def target_frame(target_id: int, target: Target, tls: TlsPaths) -> bytes:
    fields = _TARGET.pack(target_id, target.https, target.port)
    paths = b"".join(_text(None if path is None else str(path)) for path in tls)
    return _frame(TARGET, fields + _text(target.host) + paths + target.head)


def read_target(payload: bytes) -> tuple[int, Target, TlsPaths]:
    target_id, https, port = _TARGET.unpack_from(payload)
    offset = _TARGET.size
    host, offset = _read_text(payload, offset)
    paths: list[Path | None] = []
    for _ in range(3):
        path, offset = _read_text(payload, offset)
        paths.append(None if path is None else Path(path))
    target = Target(bool(https), host or "", port, payload[offset:])
    return target_id, target, (paths[0], paths[1], paths[2])


def request_head(request_id: int, target_id: int, timeout_s: float, body_size: int) -> bytes:
    """The frame of a request up to its body, which follows it as is."""
    return _REQUEST.pack(
        _REQUEST_FIELDS.size + 1 + body_size, REQUEST, request_id, target_id, timeout_s
    )


def read_request(payload: bytes) -> tuple[int, int, float, bytes]:
    request_id, target_id, timeout_s = _REQUEST_FIELDS.unpack_from(payload)
    return request_id, target_id, timeout_s, payload[_REQUEST_FIELDS.size :]


def answer_frame(request_id: int, answer: Answer) -> bytes:
    retry_after = b""
    retry_size = -1
    if answer.retry_after is not None:
        retry_after = answer.retry_after.encode("latin-1")
        retry_size = len(retry_after)
    size = _ANSWER_FIELDS.size + 1 + len(retry_after) + len(answer.body)
    head = _ANSWER.pack(size, ANSWER, request_id, answer.status, retry_size)
    return head + retry_after + answer.body


# A 2xx answer carries nothing else: one object serves them all.
_PLAIN_ANSWERS: dict[int, Answer] = {}


def read_answer(payload: bytes) -> tuple[int, Answer]:
    request_id, status, retry_size = _ANSWER_FIELDS.unpack_from(payload)
    offset = _ANSWER_FIELDS.size
    if retry_size < 0 and len(payload) == offset:
        answer = _PLAIN_ANSWERS.get(status)
        if answer is None:
            answer = _PLAIN_ANSWERS.setdefault(status, Answer(status, None, b""))
        return request_id, answer
    retry_after = None
    if retry_size >= 0:
        retry_after = payload[offset : offset + retry_size].decode("latin-1")
        offset += retry_size
    return request_id, Answer(status, retry_after, payload[offset:])


def error_of(exc: BaseException) -> tuple[int, str, str]:
    """What crosses of an exception: its kind, its type's name and its text."""
    if isinstance(exc, asyncio.TimeoutError) and not _is_os_timeout(exc):
        kind = ERROR_TIMEOUT
    elif isinstance(exc, OSError):
        kind = ERROR_OS
    else:
        kind = ERROR_OTHER
    return kind, type(exc).__name__, str(exc)


def _is_os_timeout(exc: BaseException) -> bool:
    # On 3.11 asyncio.TimeoutError is the builtin TimeoutError, an OSError
    # too; one with an errno came from a socket (ETIMEDOUT), not a deadline.
    return isinstance(exc, OSError) and exc.errno is not None


def error_frame(request_id: int, kind: int, name: str, text: str) -> bytes:
    encoded_name = name.encode("ascii", "replace")
    encoded_text = text.encode("utf-8", "surrogateescape")
    size = _ERROR_FIELDS.size + 1 + len(encoded_name) + len(encoded_text)
    head = _ERROR.pack(size, ERROR, request_id, kind, len(encoded_name))
    return head + encoded_name + encoded_text


def read_error(payload: bytes) -> tuple[int, BaseException]:
    request_id, kind, name_size = _ERROR_FIELDS.unpack_from(payload)
    offset = _ERROR_FIELDS.size
    name = payload[offset : offset + name_size].decode("ascii")
    text = payload[offset + name_size :].decode("utf-8", "surrogateescape")
    return request_id, rebuild_error(kind, name, text)


def rebuild_error(kind: int, name: str, text: str) -> BaseException:
    """The exception the transport process caught, as the same type where it is
    one we know (its text is then the same too), else an OSError naming it."""
    if kind == ERROR_TIMEOUT:
        return asyncio.TimeoutError(text)
    known = _ERROR_TYPES.get(name)
    if known is not None:
        if name in _SSL_ERRORS:
            # An SSLError's text is its strerror, which only the two-argument form sets.
            return known(0, text)
        return known(text)
    return OSError(f"{name}: {text}" if text else name)


class FrameWriter:
    """Both sides' sending: the frames of one event-loop iteration leave in
    one write when it ends, so a burst costs a write, not a write per frame."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._out: list[bytes] = []
        self.transport: asyncio.Transport | None = None  # set once connected

    def send(self, *parts: bytes) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.extend(parts)

    def _flush(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(self._out))
        self._out.clear()


class FrameReader:
    """Cuts the bytes read from a socket into whole frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames ``data`` completes, as (kind, payload), in order."""
        buffer = self._buffer
        buffer += data
        frames: list[tuple[int, bytes]] = []
        offset = 0
        end = len(buffer)
        header = _HEADER.size
        while end - offset >= header:
            size, kind = _HEADER.unpack_from(buffer, offset)
            stop = offset + 4 + size
            if stop > end:
                break
            frames.append((kind, bytes(buffer[offset + header : stop])))
            offset = stop
        if offset:
            del buffer[:offset]
        return frames
