"""``wazuh-integrator demo``: the real daemon, delivering to local receivers.

Lays out a Wazuh home from the bundled template, starts stand-in receivers on
127.0.0.1 and a Unix datagram socket where analysisd's queue would be, runs
``wazuh-integrator run --once`` in a subprocess against that home, and shows
what every receiver got.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import tempfile
from collections import Counter
from email import message_from_bytes, policy
from importlib.resources import files
from pathlib import Path

import orjson

from wazuh_integrator.demo.receivers import CHAT_SERVICES, DemoReceivers

TEMPLATE = files("wazuh_integrator.demo") / "home"
# The stand-ins whose count is shown after the chat services, in this order.
_NET_SERVICES = ("opsgenie", "thehive", "email", "syslog", "virustotal", "maltiverse")
_UNITS = {"email": "message(s)", "syslog": "message(s)"}


def lay_out_home(home: Path) -> None:
    """Copy the template into ``home`` (a fresh Wazuh tree, nothing else)."""
    for relative in ("etc/ossec.conf", "integrations/custom-demo", "alerts.json"):
        source = TEMPLATE.joinpath(*relative.split("/"))
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    (home / "integrations" / "custom-demo").chmod(0o750)
    alerts = home / "logs" / "alerts" / "alerts.json"
    alerts.parent.mkdir(parents=True, exist_ok=True)
    (home / "alerts.json").replace(alerts)
    (home / "queue" / "sockets").mkdir(parents=True, exist_ok=True)


def _socket_home() -> Path:
    # AF_UNIX paths are limited to ~107 bytes: keep the demo home short.
    return Path(tempfile.mkdtemp(prefix="wazuh-demo-", dir="/tmp"))


async def _run(home: Path, debug: bool) -> int:
    receivers = DemoReceivers(home / "queue" / "sockets" / "queue")
    await receivers.start()
    try:
        config = home / "etc" / "ossec.conf"
        text = config.read_text().replace("{{RECEIVER}}", receivers.base_url)
        text = text.replace("{{SMTP}}", receivers.smtp_url)
        config.write_text(text.replace("{{SYSLOG}}", receivers.syslog_url))
        print(f"Demo Wazuh home: {home}")
        print(
            f"Local receivers: {receivers.base_url}, {receivers.smtp_url},"
            f" {receivers.syslog_url} and {receivers.socket_path}\n"
        )
        command = [sys.executable, "-m", "wazuh_integrator", "--home", str(home)]
        if debug:
            command.append("-d")
        checked = await asyncio.create_subprocess_exec(*command, "check-config")
        if await checked.wait() != 0:
            return 1
        print("\n$ wazuh-integrator run --once")
        daemon = await asyncio.create_subprocess_exec(*command, "run", "--once")
        status = await daemon.wait()
    finally:
        await receivers.stop()
    _report(home, receivers)
    return status


def _report(home: Path, receivers: DemoReceivers) -> None:
    print("\nWhat the receivers got:")
    counts = Counter(received.service for received in receivers.requests)
    services = ("slack", "pagerduty", "shuffle", *CHAT_SERVICES, *_NET_SERVICES)
    for service in services:
        print(f"  {service:<11} {counts.get(service, 0)} {_UNITS.get(service, 'request(s)')}")
    print(f"  {'analysisd':<11} {len(receivers.events)} event(s)")
    first_slack = next((r for r in receivers.requests if r.service == "slack"), None)
    if first_slack is not None:
        print("\nFirst Slack message:")
        print(orjson.dumps(first_slack.body, option=orjson.OPT_INDENT_2).decode())
    first_telegram = next((r for r in receivers.requests if r.service == "telegram"), None)
    if first_telegram is not None:
        print("\nFirst Telegram message (MarkdownV2, from the default template):")
        print(first_telegram.body["text"])
    first_email = next((r for r in receivers.requests if r.service == "email"), None)
    if first_email is not None:
        message = message_from_bytes(first_email.body, policy=policy.default)
        parts = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
        print(f"\nFirst email: {message['Subject']!r} to {message['To']}, parts {parts}")
    first_syslog = next((r for r in receivers.requests if r.service == "syslog"), None)
    if first_syslog is not None:
        print(f"\nFirst syslog message:\n{first_syslog.body.decode(errors='replace')[:400]}")
    for event in receivers.events:
        print(f"\nanalysisd event: {event.decode(errors='replace')[:400]}")
    script_log = home / "logs" / "custom-demo.log"
    if script_log.exists():
        print(f"\ncustom-demo script output ({script_log}):")
        print(script_log.read_text()[:1200])
    program = runnable_program()
    print("Try next:")
    print(f"  {program} --home {home} test {home}/logs/alerts/alerts.json")
    print(f"  {program} --home {home} dead-letter list")


def runnable_program() -> str:
    """How to start this very installation from any shell, venv activated or not:
    the script installed beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "wazuh-integrator"
    if os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m wazuh_integrator"


def run_demo(directory: Path | None, *, debug: bool = False) -> int:
    """Run the demo in ``directory`` (a new temporary one by default), which
    is kept afterwards so that its state and logs can be looked at."""
    if directory is not None and directory.exists() and any(directory.iterdir()):
        print(f"error: {directory} is not empty; choose a new directory", file=sys.stderr)
        return 1
    home = directory if directory is not None else _socket_home()
    lay_out_home(home)
    return asyncio.run(_run(home, debug))
