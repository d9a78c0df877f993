"""The environment misbehaving around the real ``run``: alerts.json, the state
directory, the analysisd socket and custom scripts, each faulted on purpose.

After each case every alert is accounted for: delivered (duplicates counted),
or a dead letter with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    slack_block,
    until,
    write_config,
)
from tests.integrations.enrich_support import Answer, DatagramReceiver, FakeService, load_json
from tests.reliability import support
from tests.reliability.support import (
    FaultReport,
    free_port,
    health,
    settings,
    state_db,
    with_file_size_limit,
)

from wazuh_integrator.commands.run import EXIT_CONFIG

home = support.home
receiver = support.receiver

HOOK = "/services/T0/B0/environment-token"
VIRUSTOTAL_GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "virustotal"
SECTION = "The environment"

# The section of this module's rows in docs/reliability.md.
FAULT_SECTION = SECTION


def ids(receiver: Receiver) -> list[str]:
    return [str(value) for value in receiver.ids(HOOK)]


def expected(numbers: range) -> set[str]:
    return {f"1764262800.{number}" for number in numbers}


def duplicates(receiver: Receiver) -> int:
    return sum(count - 1 for count in Counter(ids(receiver)).values())


async def test_alerts_json_replaced_by_a_fifo_does_not_freeze_the_daemon(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    port = free_port()
    write_config(home, slack_block(receiver.url(HOOK)), settings(metrics_port=port))
    path = alerts_file(home)
    append_alerts(path, range(0, 5))
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    try:
        await until(lambda: len(ids(receiver)) == 5, 20, "the first 5 alerts", daemon)
        path.unlink()
        os.mkfifo(path)
        await daemon.wait_for_log("not a regular file but a FIFO")
        # The loop still answers: no open() is blocked waiting for a writer.
        assert (await health(port))["status"] == "running"
        path.unlink()
        append_alerts(path, range(5, 10))
        await until(lambda: len(ids(receiver)) == 10, 20, "the alerts after the FIFO", daemon)
        started = asyncio.get_running_loop().time()
    finally:
        status = await daemon.stop()
    stop_s = asyncio.get_running_loop().time() - started
    assert status == 0, daemon.log()
    assert set(ids(receiver)) == expected(range(10))
    fault_report(
        "alerts.json replaced by a FIFO while running",
        "refused with a warning; /health kept answering; the next regular file was read",
        recovery_s=round(stop_s, 2),
    )


async def test_a_fifo_at_start_is_refused_without_hanging(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    os.mkfifo(alerts_file(home))
    daemon = Daemon(home)
    await daemon.start()
    status = await daemon.wait(30)  # no writer ever comes: an open() that blocked would hang
    assert status == EXIT_CONFIG, daemon.log()
    assert "not a regular file but a FIFO" in daemon.log()
    fault_report("alerts.json is a FIFO at start", "refused at start: exit 78, the error says why")


async def test_the_state_database_deleted_while_running_is_restored(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    path = alerts_file(home)
    path.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(path, range(0, 10))
        await until(lambda: len(ids(receiver)) == 10, 20, "the first 10 alerts", daemon)
        db = state_db(home)
        for name in (db.name, db.name + "-wal", db.name + "-shm"):
            (db.parent / name).unlink(missing_ok=True)
        loop = asyncio.get_running_loop()
        deleted_at = loop.time()
        await daemon.wait_for_log("STATE DATABASE LOST")
        restored_s = loop.time() - deleted_at
        assert db.exists()
    finally:
        assert await daemon.stop() == 0, daemon.log()
    # Written while stopped: only a checkpoint that survived can find them.
    append_alerts(path, range(10, 210))
    daemon = Daemon(home)
    await daemon.start()
    try:
        await until(lambda: len(ids(receiver)) >= 210, 30, "the 200 alerts", daemon)
    finally:
        assert await daemon.stop() == 0, daemon.log()
    assert set(ids(receiver)) == expected(range(210))
    fault_report(
        "state database deleted while running, 200 alerts written while stopped",
        "noticed, logged as an error, recreated from the open copy; all 200 delivered",
        recovery_s=round(restored_s, 2),
        duplicates=duplicates(receiver),
    )


async def test_sigterm_with_the_state_disk_full_exits_0_and_loses_nothing(
    home: Path, fault_report: FaultReport
) -> None:
    slow = Receiver(delay_s={HOOK: 30.0})
    await slow.start()
    port = free_port()
    count = 3000
    try:
        write_config(
            home,
            slack_block(slow.url(HOOK)),
            settings(metrics_port=port, extra='grace_period = "0.2s"\n'),
        )
        path = alerts_file(home)
        path.write_bytes(b"")
        daemon = Daemon(home)
        # Room for the database as it starts, not for 3,000 parked alerts.
        with_file_size_limit(daemon, 512 * 1024)
        await daemon.start()
        await daemon.wait_for_log("Reading")
        append_alerts(path, range(count))

        async def waiting() -> int:
            stats = (await health(port))["integrations"]["slack#0"]
            return int(stats["queued"]) + int(stats["in_flight"])

        for _ in range(600):
            if await waiting() == count:
                break
            await asyncio.sleep(0.05)
        assert await waiting() == count
        status = await daemon.stop()
    finally:
        await slow.stop()
    log = daemon.log()
    assert status == 0, log
    assert "State database" in log and "read again at the next start" in log, log
    assert "internal error" not in log
    # With room again, nothing is missing.
    good = Receiver()
    await good.start()
    try:
        write_config(home, slack_block(good.url(HOOK)), settings())
        daemon = Daemon(home)
        await daemon.start()
        try:
            await until(lambda: len(set(good.ids(HOOK))) >= count, 60, "every alert", daemon)
        finally:
            assert await daemon.stop() == 0
    finally:
        await good.stop()
    delivered = [str(value) for value in good.ids(HOOK)]
    assert set(delivered) == expected(range(count))
    fault_report(
        "SIGTERM with the state disk full (RLIMIT_FSIZE 512 KiB), 3,000 alerts waiting",
        "exit 0, the failure logged; next start delivered all 3,000",
        duplicates=len(delivered) - count,
    )


SCRIPTS = {
    "hangs": ("sleep 600", "did not finish within 1 s"),
    "exits 1": ("echo failing >&2; exit 1", "exited with status 1: failing"),
    "is killed by a signal": ("kill -9 $$", "was killed by signal 9"),
    "writes 50 MB to stdout": ("head -c 52428800 /dev/zero | tr '\\0' x", None),
    "leaves a child holding its output": ('sleep 600 & echo $! > "$1.child"', None),
}
SCRIPT_TEMPLATE = """\
#!/bin/sh
id=$(sed -n 's/.*"id": *"\\([^"]*\\)".*/\\1/p' "$1")
echo "$id" >> '{record}'
{body}
"""


@contextlib.asynccontextmanager
async def running_service() -> AsyncIterator[FakeService]:
    service = FakeService()
    async with service.running():
        yield service


def kill_background_jobs(home: Path) -> None:
    for leftover in home.rglob("*.child"):  # a job a test script left running
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(leftover.read_text()), signal.SIGKILL)


@pytest.mark.parametrize("case", list(SCRIPTS))
async def test_a_misbehaving_custom_script(
    home: Path, fault_report: FaultReport, case: str
) -> None:
    body, reason = SCRIPTS[case]
    record = home / "ran"
    script = home / "integrations" / "custom-faulty"
    script.write_text(SCRIPT_TEMPLATE.format(record=record, body=body))
    script.chmod(0o750)
    write_config(
        home,
        "<integration><name>custom-faulty</name><alert_format>json</alert_format>"
        "<timeout>1</timeout><retries>0</retries></integration>",
    )
    append_alerts(alerts_file(home), range(3))
    daemon = Daemon(home, ["--once"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await daemon.start()
    try:
        status = await daemon.wait(120)
    finally:
        kill_background_jobs(home)
    elapsed_s = loop.time() - started
    # run --once exits 4 when it gave deliveries up (docs/commands.md).
    assert status == (0 if reason is None else 4), daemon.log()
    assert sorted(record.read_text().split()) == sorted(expected(range(3)))
    letters = support.dead_letter_errors(home)
    if reason is None:
        assert letters == []
        outcome = "success (exit 0): all 3 delivered"
    else:
        assert len(letters) == 3 and all(reason in text for text in letters), letters
        outcome = f"each a dead letter: '{reason}'"
    # The private files are gone, even for a script killed by a signal or time-out.
    assert list((state_db(home).parent / "tmp").rglob("*.alert")) == []
    fault_report(f"custom script {case}", outcome, tries=3, recovery_s=round(elapsed_s, 1))


async def run_until_delivered(home: Path, receiver: Receiver, count: int) -> Daemon:
    daemon = Daemon(home)
    await daemon.start()
    try:
        await until(lambda: len(set(ids(receiver))) >= count, 30, f"{count} alerts", daemon)
    finally:
        assert await daemon.stop() == 0, daemon.log()
    return daemon


def rotate(home: Path, day: int) -> None:
    """Wazuh's rotation: the day's file keeps a dated name; a new alerts.json starts."""
    dated = home / "logs" / "alerts" / "2026" / "Nov" / f"ossec-alerts-{day:02d}.json"
    dated.parent.mkdir(parents=True, exist_ok=True)
    os.link(alerts_file(home), dated)
    alerts_file(home).unlink()
    alerts_file(home).write_bytes(b"")


async def deliver_ten_then_stop(home: Path, receiver: Receiver) -> Path:
    """A daemon that delivered alerts 0 to 9 and stopped; returns alerts.json."""
    write_config(home, slack_block(receiver.url(HOOK)))
    path = alerts_file(home)
    append_alerts(path, range(0, 10))
    daemon = Daemon(home, ["--from-start"])
    await daemon.start()
    try:
        await until(lambda: len(ids(receiver)) == 10, 20, "the first 10", daemon)
    finally:
        assert await daemon.stop() == 0
    return path


@pytest.mark.parametrize("fault", ["deleted", "truncated", "replaced"])
async def test_alerts_json_changed_while_the_daemon_is_down(
    home: Path, receiver: Receiver, fault_report: FaultReport, fault: str
) -> None:
    path = await deliver_ten_then_stop(home, receiver)
    append_alerts(path, range(10, 15))  # written after the stop, then lost with the file
    if fault == "deleted":
        path.unlink()
    elif fault == "truncated":
        os.truncate(path, 0)
    else:
        path.with_name("alerts.new").write_bytes(b"")
        os.replace(path.with_name("alerts.new"), path)
    append_alerts(path, range(15, 40))
    daemon = await run_until_delivered(home, receiver, 35)
    if fault == "truncated":  # same identity: only the first bytes tell
        assert "not its first bytes" in daemon.log()
    assert expected(range(15, 40)) <= set(ids(receiver))
    lost = expected(range(10, 15)) - set(ids(receiver))
    kept = "read" if not lost else f"{len(lost)} lost with it (documented)"
    fault_report(
        f"alerts.json {fault} while the daemon was down",
        f"warned; the new content read from its start (25 of 25 delivered); what the old file "
        f"held after the checkpoint: {kept}",
        duplicates=duplicates(receiver),
    )


async def test_alerts_json_rotated_twice_while_the_daemon_is_down(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    path = await deliver_ten_then_stop(home, receiver)
    append_alerts(path, range(10, 20))  # the rest of the checkpoint's day
    rotate(home, 27)
    append_alerts(path, range(20, 30))  # a whole day while stopped
    rotate(home, 28)
    append_alerts(path, range(30, 40))  # today
    daemon = Daemon(home)
    await daemon.start()
    try:
        await until(
            lambda: expected(range(10, 40)) <= set(ids(receiver)),
            30,
            "the checkpoint's day, the day in between and today",
            daemon,
        )
    finally:
        assert await daemon.stop() == 0
    assert "Rotated more than once while we were stopped" in daemon.log()
    assert set(ids(receiver)) == expected(range(40))
    fault_report(
        "alerts.json rotated twice while the daemon was down",
        "the checkpoint's file finished from its dated name, the day in between and today "
        "read whole: 30 of 30 delivered",
        duplicates=duplicates(receiver),
    )


async def test_a_state_directory_that_cannot_be_written_is_a_clear_error(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    # /proc refuses new entries even to root, where a chmod would not stop it.
    write_config(
        home,
        slack_block(receiver.url(HOOK)),
        settings(extra='state_dir = "/proc/self/wi-state"\n'),
    )
    append_alerts(alerts_file(home), range(3))
    daemon = Daemon(home)
    await daemon.start()
    status = await daemon.wait(30)
    log = daemon.log()
    assert status == EXIT_CONFIG, log
    assert "/proc/self/wi-state" in log and "Traceback" not in log
    assert ids(receiver) == []  # nothing read, so nothing skipped: all there at the next start
    fault_report(
        "state directory not writable",
        "refused at start: exit 78, the error names the directory; nothing read",
    )


async def test_a_corrupt_state_database_is_refused_at_start(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    append_alerts(alerts_file(home), range(3))
    db = state_db(home)
    db.parent.mkdir(parents=True)
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
    daemon = Daemon(home)
    await daemon.start()
    status = await daemon.wait(30)
    log = daemon.log()
    assert status == 1, log
    assert str(db) in log and "state database" in log and "Traceback" not in log
    assert ids(receiver) == []
    fault_report(
        "state database corrupted while stopped",
        "refused at start: exit 1, the error names the file; nothing read or overwritten",
    )


async def test_the_analysisd_socket_missing_then_appearing(
    home: Path, fault_report: FaultReport
) -> None:
    case = VIRUSTOTAL_GOLDEN / "v3-found-malicious"
    alert, answer = load_json(case / "alert.json"), load_json(case / "answer.json")
    socket_path = home / "queue" / "sockets" / "queue"
    async with running_service() as service:
        service.answers[f"/api/v3/files/{alert['syscheck']['md5_after']}"] = Answer(
            200, answer["body"]
        )
        (home / "etc" / "ossec.conf").write_text(
            "<ossec_config><integration><name>virustotal</name>"
            f"<hook_url>{service.url}</hook_url><api_key>k3y-analysisd-case</api_key>"
            "</integration></ossec_config>\n"
        )
        (home / "etc" / "integrator.toml").write_text(
            '[integrations.virustotal]\ninitial_backoff = "0.05s"\nmax_backoff = "0.5s"\n'
        )
        alerts_file(home).write_bytes(b"")
        # Missing at start: refused, saying which socket and for whom.
        daemon = Daemon(home)
        await daemon.start()
        assert await daemon.wait(30) == EXIT_CONFIG
        assert "analysisd socket" in daemon.log() and "needed by virustotal#0" in daemon.log()
        # There at start, then gone (analysisd restarting), then back.
        analysisd = DatagramReceiver(socket_path)
        daemon = Daemon(home)
        await daemon.start()
        try:
            await daemon.wait_for_log("Reading")
            analysisd.close()
            socket_path.unlink()
            with alerts_file(home).open("a") as handle:
                handle.write(json.dumps(alert) + "\n")
            await daemon.wait_for_log("retrying")
            loop = asyncio.get_running_loop()
            appeared_at = loop.time()
            analysisd = DatagramReceiver(socket_path)
            received: list[bytes] = []
            await until(
                lambda: bool(received.extend(analysisd.drain()) or received),
                30,
                "the event at analysisd",
                daemon,
            )
            recovery_s = loop.time() - appeared_at
        finally:
            analysisd.close()
            assert await daemon.stop() == 0, daemon.log()
    assert len(received) == 1
    fault_report(
        "analysisd socket missing at start; gone while running, then back",
        "at start: refused, exit 78, naming the socket; while running: retried, then "
        "delivered once the socket was back",
        recovery_s=round(recovery_s, 2),
    )
