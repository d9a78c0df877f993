"""A minimal HTTP receiver of ours, in its own process, for what nginx cannot do:
record when each alert arrives (latency), answer late (isolation), and count
distinct alert ids (memory: every alert delivered).

Run as ``python -m bench.receiver --port N [--delay-ms D] [--record FILE]``;
it prints ``listening <port>`` once ready, answers ``GET /__count`` with its
counts as JSON, and on SIGTERM writes ``--record`` and exits. HTTP/1.1 with
keep-alive and Content-Length bodies is all the daemon's client sends.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from pathlib import Path

import orjson

# Slack's body carries the alert id as the attachment's "ts".
_ALERT_ID = re.compile(rb'"ts":"([^"]*)"')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class Tally:
    """What arrived: a count, the distinct ids, and (when recording) receipt times."""

    def __init__(self, record: bool) -> None:
        self.requests = 0
        self.ids: set[bytes] = set()
        self.record = record
        self.receipts: list[tuple[int, bytes]] = []

    def add(self, body: bytes) -> None:
        received_ns = time.monotonic_ns()
        self.requests += 1
        match = _ALERT_ID.search(body)
        alert_id = match.group(1) if match else b""
        self.ids.add(alert_id)
        if self.record:
            self.receipts.append((received_ns, alert_id))

    def counts(self) -> bytes:
        return orjson.dumps({"requests": self.requests, "distinct": len(self.ids)})


class _Connection(asyncio.Protocol):
    def __init__(self, tally: Tally, delay_s: float) -> None:
        self._tally = tally
        self._delay_s = delay_s
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self._buffer[:head_end]
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            end = head_end + 4 + length
            if len(self._buffer) < end:
                return
            body = self._buffer[head_end + 4 : end]
            self._buffer = self._buffer[end:]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        if head.startswith(b"GET /__count"):
            counts = self._tally.counts()
            self._transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(counts), counts)
            )
            return
        self._tally.add(body)
        if self._delay_s:
            asyncio.get_running_loop().call_later(self._delay_s, self._late, self._transport)
        else:
            self._transport.write(_OK)

    @staticmethod
    def _late(transport: asyncio.Transport) -> None:
        if not transport.is_closing():
            transport.write(_OK)


async def serve(port: int, delay_s: float, record: bool) -> Tally:
    tally = Tally(record)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(tally, delay_s), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    tally = asyncio.run(serve(args.port, args.delay_ms / 1000, args.record is not None))
    if args.record is not None:
        args.record.write_bytes(
            orjson.dumps(
                {
                    "requests": tally.requests,
                    "distinct": len(tally.ids),
                    "receipts": [(ns, i.decode()) for ns, i in tally.receipts],
                }
            )
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
