"""Stream entries a worker did not expect: someone else's XADD to the stream
(fields missing, not JSON, nested 100,000 deep, huge, not UTF-8). Each is
skipped or delivered; none stops the worker, and the alerts after them arrive."""

from __future__ import annotations

import orjson
import pytest
from tests.cluster.harness import Role, cluster_home, delivered_ids, removed_after
from tests.cluster.redis_server import RedisServer
from tests.e2e.harness import Receiver, make_alert, until

pytestmark = pytest.mark.timeout(180)

STREAM = "wazuh-integrator:alerts"


def alert_line(number: int) -> bytes:
    return orjson.dumps(make_alert(number))


HOSTILE: list[dict[bytes, bytes]] = [
    {b"node": b"manager-a"},  # no alert
    {b"alert": b"not json at all", b"node": b"manager-a"},
    {b"alert": b"[" * 100_000 + b"]" * 100_000},
    {b"alert": b'{"a":' * 100_000 + b"1" + b"}" * 100_000},
    {b"alert": b'{"rule":' * 100_000 + b"1" + b"}" * 100_000},
    {b"alert": b"\xff\xfe\x00garbage"},
    {b"alert": b'"a string"'},
    {b"alert": alert_line(9001), b"node": b"\xff\xfe not utf-8"},
    {b"alert": alert_line(9002), b"only": b"\xff\xfe not utf-8"},
    {b"alert": alert_line(9003), b"only": b"nobody#7"},
    {b"alert": alert_line(9004), b"node": b"x" * 1_000_000},
    {b"alert": b"x" * 4_000_000},
    {b"alert": alert_line(9005), b"cluster": b"extra field", b"": b""},
]


async def test_hostile_entries_neither_stop_a_worker_nor_hold_back_the_rest(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver)
    with removed_after(home):
        worker = Role(home, ["--role", "worker"], name="worker")
        client = redis_server.client()
        try:
            await worker.start()
            await worker.wait_for_log("delivering from stream", 60)
            for number in range(5):
                await client.xadd(STREAM, {b"alert": alert_line(number), b"node": b"manager-a"})
            for fields in HOSTILE:
                await client.xadd(STREAM, fields)  # type: ignore[arg-type]
            for number in range(5, 10):
                await client.xadd(STREAM, {b"alert": alert_line(number), b"node": b"manager-a"})
            expected = {f"1764262800.{n}" for n in (*range(10), 9001, 9004, 9005)}

            def arrived() -> bool:
                return expected <= set(delivered_ids(receiver))

            await until(arrived, 90, "the good alerts around the hostile ones", worker)
            assert worker.process is not None and worker.process.returncode is None
        finally:
            await client.aclose()
            if worker.process is not None and worker.process.returncode is None:
                await worker.stop()
        log = worker.log()
        assert "Traceback" not in log, log[-3000:]
        assert "Worker stopping" not in log, log[-3000:]
