"""Hostile alert lines and configuration, against the real ``run`` in a subprocess.

Each case writes good alerts around the bad input and checks that every good
one is delivered, the bad one is skipped with a warning, and the daemon exits 0.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    make_alert,
    slack_block,
    until,
    write_config,
)
from tests.reliability import support
from tests.reliability.support import FaultReport

from wazuh_integrator.commands.run import EXIT_CONFIG

HOOK = "/services/T0/B0/hostile-input-token"
SECTION = "Hostile input"
DEPTH = 1000


home = support.home
receiver = support.receiver


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def deep_line(where: str) -> bytes:
    alert = orjson.dumps(make_alert(99))
    if where == "data":
        return alert[:-1] + b',"data":' + nested(DEPTH) + b"}"
    if where == "rule":
        rule_end = alert.index(b'"groups"')
        return alert[:rule_end] + b'"deep":' + nested(DEPTH) + b"," + alert[rule_end:]
    assert where == "array"
    return alert[:-1] + b',"data":' + b"[" * DEPTH + b"]" * DEPTH + b"}"


async def run_once(home: Path, lines: list[bytes]) -> tuple[int, Daemon]:
    alerts_file(home).write_bytes(b"".join(line + b"\n" for line in lines))
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    return await daemon.wait(60), daemon


def good(number: int) -> bytes:
    return orjson.dumps(make_alert(number))


@pytest.mark.parametrize("where", ["data", "rule", "array"])
async def test_a_deeply_nested_alert_is_skipped_and_the_rest_delivered(
    home: Path, receiver: Receiver, fault_report: FaultReport, where: str
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    status, daemon = await run_once(home, [good(0), deep_line(where), good(1)])
    log = daemon.log()
    assert status == 0, log
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.1"]
    assert "Skipping a line that is nested too deeply" in log
    assert "RecursionError" not in log and "Traceback" not in log
    fault_report(
        f"alert nested {DEPTH} levels deep in {where}",
        "skipped with a warning, counted invalid (too_deep); the rest delivered",
        section=SECTION,
    )


@pytest.mark.parametrize(
    ("rule", "shown"),
    [(None, "missing"), ([1, 2], "a list"), ("5712", "a string")],
)
async def test_an_alert_without_a_rule_object_is_skipped_with_a_warning(
    home: Path, receiver: Receiver, fault_report: FaultReport, rule: object, shown: str
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    bad = make_alert(50)
    if rule is None:
        del bad["rule"]
    else:
        bad["rule"] = rule
    status, daemon = await run_once(home, [good(0), orjson.dumps(bad), good(1)])
    log = daemon.log()
    assert status == 0, log
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.1"]
    assert log.count("Skipping an alert without a rule object") == 1, log
    fault_report(
        f"rule {shown}", "skipped with a warning, counted invalid (no_rule)", section=SECTION
    )


async def test_a_line_holding_u2028_is_one_alert(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alert = make_alert(7)
    alert["full_log"] = "GET /a\u2028b\u2029c\x85d HTTP/1.1"
    raw = orjson.dumps(alert)
    assert "\u2028".encode() in raw  # written raw, as cJSON does
    status, daemon = await run_once(home, [raw])
    assert status == 0, daemon.log()
    assert receiver.ids(HOOK) == ["1764262800.7"]
    fault_report(
        "raw U+2028, U+2029, U+0085 inside full_log", "one alert, delivered", section=SECTION
    )


def check_config(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_deeply_nested_options_are_a_configuration_error(
    home: Path, fault_report: FaultReport
) -> None:
    options = nested(DEPTH).decode()
    write_config(home, slack_block("https://hooks.example/x", f"<options>{options}</options>"))
    checked = check_config(home)
    assert checked.returncode == 1, checked.stderr
    message = "etc/ossec.conf:2: <options>: not valid JSON: nested more than 128 levels deep"
    assert message in checked.stdout
    daemon = Daemon(home)
    await daemon.start()
    assert await daemon.wait(60) == EXIT_CONFIG
    assert message in daemon.log()
    assert "internal error" not in daemon.log()
    fault_report(
        f"<options> nested {DEPTH} levels deep",
        "configuration error naming file, line and element (check-config exits 1, run 78)",
        section=SECTION,
    )


async def test_a_reload_refusing_deep_options_leaves_later_reloads_working(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    alerts_file(home).write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        conf = home / "etc" / "ossec.conf"
        good_conf = conf.read_text()
        deep = f"<options>{nested(DEPTH).decode()}</options>"
        write_config(home, slack_block(receiver.url(HOOK), deep))
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        await daemon.wait_for_log("New configuration refused")
        second = "/services/T0/B0/second-block"
        conf.write_text(
            good_conf.replace(
                "</ossec_config>", slack_block(receiver.url(second)) + "\n</ossec_config>"
            )
        )
        daemon.process.send_signal(signal.SIGHUP)
        await until(
            lambda: daemon.log().count("Enabling integration for: 'slack'.") == 2,
            15,
            "the second reload",
            daemon,
        )
        with alerts_file(home).open("ab") as handle:
            handle.write(good(3) + b"\n")
        await until(lambda: len(receiver.received.get(second, [])) == 1, 15, "delivery", daemon)
    finally:
        assert await daemon.stop() == 0
    assert "Traceback" not in daemon.log()
    fault_report(
        "SIGHUP with <options> nested 1,000 levels deep, then a good SIGHUP",
        "first refused (old configuration kept), second applied",
        section=SECTION,
    )


def odd_lines(count: int, seed: int = 8) -> list[bytes]:
    """Lines a hostile or broken writer could leave in alerts.json, repeatably."""
    rng = random.Random(seed)
    shapes: list[bytes] = [
        b"\xff\xfe\x00garbage",
        b"\x00" * 50,
        b"\xef\xbb\xbf" + good(900),  # a BOM before a real alert
        b'{"rule": "5712", "location": "x"}',
        b'{"rule": [1, 2], "location": "x"}',
        b'{"rule": {"level": "7", "id": 5712, "groups": "sshd"}, "location": "x"}',
        b'{"rule": {"level": 7.5, "id": "1", "groups": {"a": "b"}}, "location": null}',
        b'{"rule": {"level": 123456789012345678901234567890, "id": "1", "groups": []}}',
        b'{"rule": {"level": 1e999}}',
        b'{"rule": {"level": 5, "id": "\\u0000", "groups": ["\\ud800"]}, "location": "\\u0000"}',
        b'{"a": 1, "a": 2, "rule": {"level": 3}, "rule": {"level": 4}}',
        b"[" * 100_000 + b"]" * 100_000,
        b"-" * 1000,
        b'{"rule": {',
    ]
    lines = []
    for _ in range(count):
        line = bytearray(rng.choice(shapes))
        for _ in range(rng.randrange(3)):
            if line:
                line[rng.randrange(len(line))] = rng.randrange(256)
        lines.append(bytes(line).replace(b"\n", b" "))
    return lines


async def test_a_stream_of_odd_lines_never_stops_delivery(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    bad = odd_lines(300)
    lines = []
    for number, line in enumerate(bad):
        lines += [line, good(number)]
    status, daemon = await run_once(home, lines)
    log = daemon.log()
    assert status == 0, log[-3000:]
    delivered = set(receiver.ids(HOOK))
    # Every good alert arrived; an odd line that is a valid alert may arrive too.
    assert {f"1764262800.{n}" for n in range(len(bad))} <= delivered
    assert "Traceback" not in log
    fault_report(
        "300 odd lines (invalid UTF-8, NUL, BOM, rule not an object, odd levels and groups, "
        "1e999, 100,000 levels, cut JSON), each randomly mutated, between 300 good alerts",
        "every good alert delivered; odd lines skipped with a warning or routed by stock's rules",
        tries=300,
        section=SECTION,
    )


async def test_a_100_mb_line_is_skipped_and_the_rest_delivered(
    home: Path, receiver: Receiver, fault_report: FaultReport
) -> None:
    write_config(home, slack_block(receiver.url(HOOK)))
    huge = b'{"rule": {"level": 9}, "full_log": "' + b"x" * (100 * 1024 * 1024) + b'"}'
    status, daemon = await run_once(home, [good(0), huge, good(1)])
    assert status == 0, daemon.log()
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.1"]
    assert "Skipping a line longer than" in daemon.log()
    fault_report(
        "a 100 MB line", "skipped as oversize with a warning; the rest delivered", section=SECTION
    )
