"""End-to-end: every built-in integration and custom scripts through the real
``wazuh-integrator run --once``, against local stand-ins for their services,
a real Unix datagram socket for analysisd, and real executable scripts."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.harness import Daemon, Receiver
from tests.integrations.enrich_support import (
    Answer,
    DatagramReceiver,
    FakeService,
    load_json,
    split_datagram,
)

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
API_KEY = "e2e-api-key-never-logged"


@pytest.fixture
def analysisd(home: Path) -> Iterator[DatagramReceiver]:
    receiver = DatagramReceiver(home / "queue" / "sockets" / "queue")
    yield receiver
    receiver.close()


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    async with fake.running():
        yield fake


def configure(home: Path, blocks: str, settings: str = "") -> None:
    (home / "etc" / "ossec.conf").write_text(f"<ossec_config>\n{blocks}\n</ossec_config>\n")
    (home / "etc" / "integrator.toml").write_text(settings)


def write_alerts(home: Path, alerts: list[dict[str, Any]]) -> None:
    lines = "".join(json.dumps(alert) + "\n" for alert in alerts)
    (home / "logs" / "alerts" / "alerts.json").write_text(lines)


async def run_once(home: Path, expect_status: int = 0) -> Daemon:
    daemon = Daemon(home, ["--once"])
    await daemon.start()
    assert await daemon.wait() == expect_status, daemon.log()
    assert API_KEY not in daemon.log()
    return daemon


@pytest.mark.parametrize("case", ["v2-found-malicious", "v3-found-malicious", "v3-not-found"])
async def test_virustotal_enriches_through_analysisd(
    home: Path, service: FakeService, analysisd: DatagramReceiver, case: str
) -> None:
    golden = GOLDEN / "virustotal" / case
    alert, answer = load_json(golden / "alert.json"), load_json(golden / "answer.json")
    md5 = alert["syscheck"]["md5_after"]
    path = "/vtapi/v2/file/report" if answer["api"] == "v2" else f"/api/v3/files/{md5}"
    service.answers[path] = Answer(answer["status"], answer["body"])
    configure(
        home,
        f"<integration><name>virustotal</name><hook_url>{service.url}</hook_url>"
        f"<api_key>{API_KEY}</api_key><group>syscheck</group></integration>",
        f'[integrations.virustotal]\napi_version = "{answer["api"]}"\n',
    )
    write_alerts(home, [alert])
    await run_once(home)

    [request] = service.requests
    assert request.path == path
    if answer["api"] == "v2":
        assert request.query == {"apikey": API_KEY, "resource": md5}
    else:
        assert request.headers["x-apikey"] == API_KEY
    [datagram] = analysisd.drain()
    location, event = split_datagram(datagram)
    assert location.startswith("1:") and location.endswith("virustotal:")
    assert event == load_json(golden / "event.json")


async def test_virustotal_answers_a_repeated_hash_from_its_cache(
    home: Path, service: FakeService, analysisd: DatagramReceiver
) -> None:
    golden = GOLDEN / "virustotal" / "v3-found-malicious"
    alert, answer = load_json(golden / "alert.json"), load_json(golden / "answer.json")
    service.answers[f"/api/v3/files/{alert['syscheck']['md5_after']}"] = Answer(200, answer["body"])
    configure(
        home,
        f"<integration><name>virustotal</name><hook_url>{service.url}</hook_url>"
        f"<api_key>{API_KEY}</api_key></integration>",
    )
    write_alerts(home, [alert, {**alert, "id": "1718040603.4001"}])
    await run_once(home)
    assert len(service.requests) == 1, "the second alert's hash came from the cache"
    events = [split_datagram(datagram)[1] for datagram in analysisd.drain()]
    assert sorted(event["virustotal"]["source"]["alert_id"] for event in events) == [
        "1718040603.4000",
        "1718040603.4001",
    ]


async def test_virustotal_bad_credentials_send_the_stock_error_event(
    home: Path, service: FakeService, analysisd: DatagramReceiver
) -> None:
    alert = load_json(GOLDEN / "virustotal" / "v3-found-malicious" / "alert.json")
    service.answers[f"/api/v3/files/{alert['syscheck']['md5_after']}"] = Answer(403, {})
    configure(
        home,
        f"<integration><name>virustotal</name><hook_url>{service.url}</hook_url>"
        f"<api_key>{API_KEY}</api_key></integration>",
    )
    write_alerts(home, [alert])
    await run_once(home, expect_status=4)  # 4: given up, a dead letter
    [datagram] = analysisd.drain()
    assert split_datagram(datagram)[1] == {
        "virustotal": {"error": 403, "description": "Error: Check credentials"},
        "integration": "virustotal",
    }


@pytest.mark.parametrize("case", ["ip-hostname-url", "sample-md5-found-sha1-unknown"])
async def test_maltiverse_enriches_through_analysisd(
    home: Path, service: FakeService, analysisd: DatagramReceiver, case: str
) -> None:
    golden = GOLDEN / "maltiverse" / case
    for path, answer in load_json(golden / "answers.json").items():
        service.answers[path] = Answer(answer["status"], answer.get("body"))
    configure(
        home,
        f"<integration><name>maltiverse</name><hook_url>{service.url}</hook_url>"
        f"<api_key>{API_KEY}</api_key></integration>",
    )
    write_alerts(home, [load_json(golden / "alert.json")])
    await run_once(home)
    assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r in service.requests)
    events = [split_datagram(datagram)[1] for datagram in analysisd.drain()]
    assert events == load_json(golden / "events.json")


@pytest.mark.parametrize(
    ("integration", "case"),
    [
        ("pagerduty", "agent_level15"),
        ("pagerduty", "agent_level3_options_payload"),
        ("shuffle", "agent_level15"),
        ("shuffle", "agent_level3_options"),
    ],
)
async def test_webhooks_receive_the_golden_body(integration: str, case: str, home: Path) -> None:
    receiver = Receiver()
    await receiver.start()
    folder = GOLDEN / integration
    options_file = folder / f"{case}.options.json"
    options = f"<options>{options_file.read_text()}</options>" if options_file.exists() else ""
    api_key = "<api_key>golden-routing-key</api_key>" if integration == "pagerduty" else ""
    try:
        configure(
            home,
            f"<integration><name>{integration}</name><hook_url>{receiver.url('/hook')}</hook_url>"
            f"{api_key}{options}</integration>",
        )
        write_alerts(home, [load_json(folder / f"{case}.alert.json")])
        await run_once(home)
    finally:
        await receiver.stop()
    assert receiver.received["/hook"] == [load_json(folder / f"{case}.expected.json")]


PYTHON_SCRIPT = """#!{python}
import os, stat, sys, json
record = {{"argv": sys.argv[1:]}}
for index in (1, 5):
    path = sys.argv[index]
    if path:
        record[f"file{{index}}"] = open(path).read()
        record[f"mode{{index}}"] = stat.S_IMODE(os.stat(path).st_mode)
with open({record!r}, "a") as out:
    out.write(json.dumps(record) + "\\n")
"""

SHELL_SCRIPT = """#!/bin/sh
{{
  printf '%s\\n' "$#" "$1" "$2" "$3" "$4" "$5" "$6" "$7"
  stat -c '%a' "$1"
  cat "$1"
  printf '\\n--\\n'
}} >> {record}
"""


def all_removed(*paths: str) -> bool:
    return not any(Path(path).exists() for path in paths)


def install(home: Path, name: str, text: str) -> None:
    script = home / "integrations" / name
    script.write_text(text)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_custom_scripts_get_stock_arguments_and_private_files(home: Path) -> None:
    import sys

    python_record, shell_record = home / "python.record", home / "shell.record"
    install(
        home, "custom-py", PYTHON_SCRIPT.format(python=sys.executable, record=str(python_record))
    )
    install(home, "custom-sh", SHELL_SCRIPT.format(record=shell_record))
    configure(
        home,
        "<integration><name>custom-py</name><api_key>key with spaces</api_key>"
        "<hook_url>https://example.invalid/x</hook_url><alert_format>json</alert_format>"
        '<options>{"team": "soc"}</options><timeout>7</timeout><retries>2</retries>'
        "</integration>"
        "<integration><name>custom-sh</name><max_log>165</max_log></integration>",
    )
    alert = {
        "timestamp": "2026-11-27T17:00:00.000+0000",
        "rule": {"level": 10, "description": "ssh brute force", "id": "5763"},
        "id": "1764262800.1",
        "full_log": "Failed password for root from 203.0.113.7",
        "data": {"srcip": "203.0.113.7"},
        "location": "/var/log/auth.log",
    }
    write_alerts(home, [alert])
    await run_once(home)

    [python_call] = [json.loads(line) for line in python_record.read_text().splitlines()]
    argv = python_call["argv"]
    assert len(argv) == 7
    assert argv[1:4] == ["key with spaces", "https://example.invalid/x", ""]
    assert argv[4].endswith("options") and argv[5:] == ["7", "2"]
    assert json.loads(python_call["file1"]) == alert
    assert json.loads(python_call["file5"]) == {"team": "soc"}
    assert python_call["mode1"] == python_call["mode5"] == 0o600
    assert all_removed(argv[0], argv[4])

    shell_lines = shell_record.read_text().splitlines()
    assert shell_lines[0] == "7", "seven arguments, no stray eighth or ninth"
    assert shell_lines[2:8] == ["", "", "", "", "10", "3"]
    assert shell_lines[8] == "600"
    assert shell_lines[9:16] == [
        "alertdate='2026-11-27T17:00:00.000+0000'",
        "alertlocation='/var/log/auth.log'",
        "ruleid='5763'",
        "alertlevel='10'",
        "ruledescription='ssh brute force'",
        "alertlog='Failed password for root from 203.0.113.7'",
        "srcip='203.0.113.7'",
    ]
