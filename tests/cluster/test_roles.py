"""End-to-end: readers and workers as real processes, a real redis-server,
a real HTTP receiver. Nothing here is mocked."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as redis
from tests.cluster.harness import (
    HOOK,
    Role,
    alerts_path,
    bodies,
    cluster_home,
    delivered_ids,
    removed_after,
)
from tests.cluster.redis_server import RedisServer, free_port
from tests.e2e.harness import Receiver, append_alerts, until

from wazuh_integrator.store import StateStore

# Real processes on a shared machine: generous bounds, every wait on a condition.
pytestmark = pytest.mark.timeout(240)

STREAM = "wazuh-integrator:alerts"
GROUP = "wazuh-integrator"


def alert_ids(numbers: range) -> set[str]:
    return {f"1764262800.{number}" for number in numbers}


async def stop_all(*roles: Role) -> None:
    for role in roles:
        if role.process is not None and role.process.returncode is None:
            await role.stop()


async def one_reader_three_workers_one_killed(
    redis_server: RedisServer, receiver: Receiver, total: int
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(total))
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(3)]
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            for worker in workers:
                await worker.start()
            for worker in workers:
                await worker.wait_for_log("delivering from stream", 60)
            await reader.start()
            await until(lambda: len(delivered_ids(receiver)) >= total // 6, 120, "a sixth", reader)
            victim = workers[0]
            assert victim.process is not None
            victim.process.send_signal(signal.SIGKILL)
            await victim.wait()
            client = redis_server.client()
            try:
                consumers = await client.xinfo_consumers(STREAM, GROUP)
            finally:
                await client.aclose()
            victim_name = f":{victim.process.pid}".encode()
            held = sum(c["pending"] for c in consumers if c["name"].endswith(victim_name))
            survivors = workers[1:]
            await until(
                lambda: len(delivered_ids(receiver)) >= total,
                240,
                f"all {total} alerts",
                survivors[0],
            )
            if held:
                # What the victim held may all have been delivered (not yet
                # acknowledged) before the kill, so every alert can arrive before
                # a survivor claims those entries: wait for the claim.
                def claimed() -> bool:
                    return any("Claimed" in worker.log() for worker in survivors)

                await until(claimed, 60, "a survivor claiming the victim's entries", survivors[0])
        finally:
            await stop_all(reader, *workers)
        received = delivered_ids(receiver)
        assert set(received) == alert_ids(range(total))
        duplicates = sum(received.values()) - len(received)
        print(f"\n{total} alerts, 1 worker killed holding {held}: {duplicates} duplicates")
        # The killed worker's deliveries still unacknowledged are at most what it held.
        assert duplicates <= held


async def test_a_killed_worker_loses_nothing(redis_server: RedisServer, receiver: Receiver) -> None:
    await one_reader_three_workers_one_killed(redis_server, receiver, 3_000)


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_a_killed_worker_loses_none_of_20000(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    await one_reader_three_workers_one_killed(redis_server, receiver, 20_000)


async def test_two_readers_on_two_homes_deliver_each_alert_once_tagged_with_its_node(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    node_a = cluster_home(redis_server.url, receiver, node="manager-a")
    node_b = cluster_home(redis_server.url, receiver, node="manager-b")
    workers_home = cluster_home(redis_server.url, receiver)
    with removed_after(node_a, node_b, workers_home):
        append_alerts(alerts_path(node_a), range(0, 500))
        append_alerts(alerts_path(node_b), range(10_000, 10_500))
        readers = [
            Role(node_a, ["--role", "reader", "--from-start"], name="reader"),
            Role(node_b, ["--role", "reader", "--from-start"], name="reader"),
        ]
        workers = [Role(workers_home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        try:
            for role in (*workers, *readers):
                await role.start()
            await until(lambda: len(delivered_ids(receiver)) >= 1000, 120, "1000 alerts")
            append_alerts(alerts_path(node_a), range(500, 600))  # the tail is followed too
            append_alerts(alerts_path(node_b), range(10_500, 10_600))
            await until(lambda: len(delivered_ids(receiver)) >= 1200, 120, "1200 alerts")
            await asyncio.sleep(1.0)  # room for a duplicate to show up, were there one
        finally:
            await stop_all(*readers, *workers)
        received = delivered_ids(receiver)
        assert set(received) == alert_ids(range(0, 600)) | alert_ids(range(10_000, 10_600))
        assert max(received.values()) == 1
        nodes = {
            str(body["id"]): body["all_fields"]["cluster"]["node"] for body in bodies(receiver)
        }
        assert {nodes[i] for i in alert_ids(range(0, 600))} == {"manager-a"}
        assert {nodes[i] for i in alert_ids(range(10_000, 10_600))} == {"manager-b"}


@pytest.mark.timeout(180)
async def test_redis_down_for_ten_seconds_loses_nothing(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(0, 1000))
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        try:
            for role in (*workers, reader):
                await role.start()
            await until(lambda: len(delivered_ids(receiver)) >= 1000, 120, "the first 1000")
            await redis_server.stop()
            append_alerts(alerts_path(home), range(1000, 2000))
            await reader.wait_for_log("is unreachable", 60)
            for worker in workers:
                await worker.wait_for_log("is unreachable", 60)
            await asyncio.sleep(10)
            assert len(delivered_ids(receiver)) == 1000  # nothing moves without Redis
            await redis_server.start()
            await until(lambda: len(delivered_ids(receiver)) >= 2000, 120, "all 2000", reader)
            await reader.wait_for_log("reachable again", 60)
        finally:
            await stop_all(reader, *workers)
        assert set(delivered_ids(receiver)) == alert_ids(range(2000))
        assert reader.process is not None and reader.process.returncode == 0


@pytest.mark.parametrize("role", ["reader", "worker"])
async def test_a_role_whose_metrics_port_is_taken_says_so_and_exits(
    redis_server: RedisServer, receiver: Receiver, role: str
) -> None:
    # A worker left its delivery tasks pending: twenty "Task was destroyed but
    # it is pending!" traces buried the one line that said what was wrong.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        home = cluster_home(
            redis_server.url, receiver, top_settings=f'metrics_address = "127.0.0.1:{port}"\n'
        )
        with removed_after(home):
            process = Role(home, ["--role", role], name=role)
            await process.start()
            assert await process.wait(60) == 1
            log = process.log()
    assert f"metrics_address 127.0.0.1:{port}: cannot listen there" in log
    assert "Task was destroyed" not in log
    assert "Traceback" not in log


async def test_health_and_metrics_per_role(redis_server: RedisServer, receiver: Receiver) -> None:
    reader_port, worker_port = free_port(), free_port()
    reader_home = cluster_home(
        redis_server.url,
        receiver,
        node="manager-a",
        top_settings=f'metrics_address = "127.0.0.1:{reader_port}"\n',
    )
    worker_home = cluster_home(
        redis_server.url, receiver, top_settings=f'metrics_address = "127.0.0.1:{worker_port}"\n'
    )
    with removed_after(reader_home, worker_home):
        append_alerts(alerts_path(reader_home), range(50))
        reader = Role(reader_home, ["--role", "reader", "--from-start"], name="reader")
        worker = Role(worker_home, ["--role", "worker"], name="worker")
        try:
            await reader.start()
            await worker.start()
            await until(lambda: len(delivered_ids(receiver)) >= 50, 60, "50 alerts", worker)
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{reader_port}"
                await until_answers(http, f"{base}/health")
                async with http.get(f"{base}/health") as answer:
                    reader_health = await answer.json()
                async with http.get(f"{base}/metrics") as answer:
                    reader_metrics = await answer.text()
                base = f"http://127.0.0.1:{worker_port}"
                await until_answers(http, f"{base}/health")
                for _ in range(600):  # the worker samples the stream every 2 s
                    async with http.get(f"{base}/health") as answer:
                        worker_health = await answer.json()
                    sampled = worker_health["cluster"]
                    if (sampled.get("length"), sampled.get("lag"), sampled["acked_total"]) == (
                        50,
                        0,
                        50,
                    ):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"the worker's health never settled: {worker_health}")
                async with http.get(f"{base}/metrics") as answer:
                    worker_metrics = await answer.text()
        finally:
            await stop_all(reader, worker)
    assert reader_health["role"] == "reader"
    assert reader_health["cluster"]["node"] == "manager-a"
    assert reader_health["cluster"]["appended_total"] == 50
    assert 'wazuh_integrator_cluster_role{role="reader"} 1' in reader_metrics
    assert "wazuh_integrator_stream_appended_total 50" in reader_metrics
    assert worker_health["role"] == "worker"
    assert worker_health["cluster"]["length"] == 50
    assert worker_health["cluster"]["acked_total"] == 50
    assert worker_health["cluster"]["lag"] == 0
    assert 'wazuh_integrator_cluster_role{role="worker"} 1' in worker_metrics
    assert "wazuh_integrator_stream_acked_total 50" in worker_metrics
    assert "wazuh_integrator_stream_length 50" in worker_metrics


async def until_answers(http: aiohttp.ClientSession, url: str) -> None:
    for _ in range(200):
        try:
            async with http.get(url) as answer:
                if answer.status in (200, 503):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_a_parked_delivery_is_acknowledged_and_survives_its_worker(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    """XACK once parked: the entry leaves the stream, and the parked row (in
    Redis) is what a later worker retries (test_parked_and_pause.py has a
    worker on another home do it)."""
    receiver.script[HOOK] = [(503, {})]
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(100))
        first = Role(home, ["--role", "worker"], name="worker0")
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        second = Role(home, ["--role", "worker"], name="worker1")
        client = redis_server.client()
        try:
            await first.start()
            await reader.start()

            async def settled_in_redis() -> bool:
                try:
                    pending = (await client.xpending(STREAM, GROUP))["pending"]
                except redis.ResponseError:  # no group yet
                    return False
                return bool(await client.xlen(STREAM) == 100 and pending == 0)

            for _ in range(600):
                if await settled_in_redis():
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(
                    f"entries never acknowledged ({receiver.attempts} attempts)\n"
                    f"worker:\n{first.log()[-3000:]}\nreader:\n{reader.log()[-3000:]}"
                )
            assert delivered_ids(receiver) == {}
            assert first.process is not None
            first.process.send_signal(signal.SIGKILL)
            await first.wait()
            receiver.script[HOOK] = [(200, {})]
            receiver.attempts.clear()
            await second.start()
            await until(lambda: len(delivered_ids(receiver)) >= 100, 90, "100 alerts", second)
        finally:
            await client.aclose()
            await stop_all(reader, first, second)
        assert set(delivered_ids(receiver)) == alert_ids(range(100))


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_dead_letters_of_every_worker_are_listed_and_replayed_from_redis(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    receiver.script[HOOK] = [(400, {})]  # permanent: each alert becomes a dead letter
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    other = cluster_home(redis_server.url, receiver)  # any node lists the cluster's letters
    with removed_after(home, other):
        append_alerts(alerts_path(home), range(20))
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        try:
            for role in (*workers, reader):
                await role.start()

            def listed() -> list[dict[str, Any]]:
                result = cli(other, "dead-letter", "list", "--json")
                assert result.returncode == 0, result.stderr
                return [json.loads(line) for line in result.stdout.splitlines()]

            for _ in range(300):
                letters = await asyncio.to_thread(listed)
                if len(letters) == 20:
                    break
                await asyncio.sleep(0.2)
            assert {letter["alert_id"] for letter in letters} == alert_ids(range(20))
            assert {letter["integration"] for letter in letters} == {"shuffle#0"}
            with StateStore.open_readonly(home / "var" / "integrator" / "state.db") as local:
                assert local.count_dead_letters() == 0  # moved, not copied
            shown = cli(other, "dead-letter", "show", str(letters[0]["id"]))
            assert json.loads(shown.stdout)["alert"]["id"] == letters[0]["alert_id"]
            receiver.script[HOOK] = [(200, {})]
            receiver.attempts.clear()
            replayed = cli(other, "dead-letter", "replay", "--all")
            assert replayed.returncode == 0, replayed.stderr
            assert "20 dead letter(s) queued for delivery" in replayed.stdout
            await until(lambda: len(delivered_ids(receiver)) >= 20, 60, "20 replayed", workers[0])
            assert cli(other, "dead-letter", "list").stdout.strip() == "No dead letters."
        finally:
            await stop_all(reader, *workers)
        assert set(delivered_ids(receiver)) == alert_ids(range(20))


async def test_a_worker_reloads_its_blocks_on_sighup(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    reader_home = cluster_home(redis_server.url, receiver, node="manager-a")
    worker_home = cluster_home(redis_server.url, receiver)
    conf = worker_home / "etc" / "ossec.conf"
    wide = conf.read_text()
    conf.write_text(wide.replace("</hook_url>", "</hook_url><level>15</level>"))
    with removed_after(reader_home, worker_home):
        append_alerts(alerts_path(reader_home), range(20))  # level 10: the worker skips them
        reader = Role(reader_home, ["--role", "reader", "--from-start"], name="reader")
        worker = Role(worker_home, ["--role", "worker"], name="worker")
        client = redis_server.client()
        try:
            await worker.start()
            await reader.start()
            for _ in range(300):
                try:
                    groups = await client.xinfo_groups(STREAM)
                except redis.ResponseError:
                    groups = []
                settled = groups and groups[0]["lag"] == 0 and groups[0]["pending"] == 0
                if settled and await client.xlen(STREAM) == 20:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the worker never acknowledged the first 20")
            assert delivered_ids(receiver) == {}
            conf.write_text(wide)
            assert worker.process is not None
            worker.process.send_signal(signal.SIGHUP)
            await worker.wait_for_log("Configuration reloaded", 60)
            append_alerts(alerts_path(reader_home), range(20, 30))
            await until(lambda: len(delivered_ids(receiver)) >= 10, 60, "10 alerts", worker)
        finally:
            await client.aclose()
            await stop_all(reader, worker)
        assert set(delivered_ids(receiver)) == alert_ids(range(20, 30))


async def test_a_worker_stopped_mid_stream_hands_everything_over(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(3000))
        workers = [Role(home, ["--role", "worker"], name=f"worker{n}") for n in range(2)]
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        try:
            for role in (*workers, reader):
                await role.start()
            for worker in workers:  # so that SIGTERM finds its handler
                await worker.wait_for_log("delivering from stream", 60)
            await until(lambda: len(delivered_ids(receiver)) >= 500, 120, "500 alerts", reader)
            assert await workers[0].stop() == 0
            assert "stopped:" in workers[0].log()
            await until(lambda: len(delivered_ids(receiver)) >= 3000, 120, "all 3000", workers[1])
        finally:
            await stop_all(reader, *workers)
        received = delivered_ids(receiver)
        assert set(received) == alert_ids(range(3000))
        print(f"\nduplicates after a SIGTERM: {sum(received.values()) - len(received)}")


async def test_the_redis_password_never_reaches_a_log_line(receiver: Receiver) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    home = cluster_home(url, receiver, node="manager-a")
    with removed_after(home):
        append_alerts(alerts_path(home), range(5))
        reader = Role(home, ["--role", "reader", "--from-start"], name="reader")
        worker = Role(home, ["--role", "worker"], name="worker")
        try:
            await reader.start()
            await worker.start()
            await reader.wait_for_log("is unreachable", 60)
            await worker.wait_for_log("is unreachable", 60)
        finally:
            await stop_all(reader, worker)
        logs = reader.log() + worker.log()
    assert "hunter2" not in logs
    assert f"redis://127.0.0.1:{url.rsplit(':', 1)[1]}" in logs


async def test_a_stream_key_of_another_type_stops_the_worker_loudly(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    client = redis_server.client()
    try:
        await client.set(STREAM, "not a stream")
    finally:
        await client.aclose()
    home = cluster_home(redis_server.url, receiver)
    with removed_after(home):
        worker = Role(home, ["--role", "worker"], name="worker")
        await worker.start()
        try:
            status = await worker.wait(180)
        finally:
            await stop_all(worker)
        assert status == 1
        assert "Worker stopping: stream consumer failed: ResponseError: WRONGTYPE" in worker.log()
