"""End-to-end: ``SIGHUP`` re-reads message templates edited in place (same
path in integrator.toml, new text), and keeps the running one when the new
text does not compile, as a bad ossec.conf is kept out on a reload."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    slack_block,
    until,
    write_config,
)

HOOK = "/services/T0/B0/template-reload"
SETTINGS = '[integrations.slack]\ntemplate = "etc/templates/slack.json.j2"\n'


def write_template(path: Path, text: str, *, mtime_of: os.stat_result | None = None) -> None:
    """Write ``text`` over ``path`` in place; with ``mtime_of``, put the old
    times back, as an editor or a copy preserving times may."""
    with path.open("r+", encoding="utf-8") as handle:
        handle.write(text)
        handle.truncate()
    if mtime_of is not None:
        os.utime(path, ns=(mtime_of.st_atime_ns, mtime_of.st_mtime_ns))


def texts(receiver: Receiver) -> list[str]:
    return [body["text"] for body in receiver.received.get(HOOK, [])]


async def test_a_template_edited_in_place_applies_on_reload(home: Path, receiver: Receiver) -> None:
    template = home / "etc" / "templates" / "slack.json.j2"
    template.parent.mkdir()
    template.write_text('{"text": "first {{ alert.id }}"}\n')
    write_config(home, slack_block(receiver.url(HOOK)), SETTINGS)
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts, range(0, 1))
        await until(lambda: len(texts(receiver)) == 1, 15, "first alert", daemon)

        # Same length, same mtime: only the text says it changed.
        write_template(template, '{"text": "again {{ alert.id }}"}\n', mtime_of=template.stat())
        await daemon.reload("Configuration reloaded:", 1)
        append_alerts(alerts, range(1, 2))
        await until(lambda: len(texts(receiver)) == 2, 15, "after the edit", daemon)

        # A reload with the template as it is changes nothing.
        await daemon.reload("Configuration reloaded:", 2)
    finally:
        assert await daemon.stop() == 0
    assert texts(receiver) == ["first 1764262800.0", "again 1764262800.1"]
    log = daemon.log()
    assert "Template etc/templates/slack.json.j2 changed: 'slack' starts again with it." in log
    assert "0 integration(s) unchanged, 0 started, 1 restarted with new settings, 0 stopped" in log
    assert "1 integration(s) unchanged, 0 started, 0 restarted with new settings, 0 stopped" in log


async def test_a_template_that_no_longer_compiles_keeps_the_running_one(
    home: Path, receiver: Receiver
) -> None:
    template = home / "etc" / "templates" / "slack.json.j2"
    template.parent.mkdir()
    template.write_text('{"text": "kept {{ alert.id }}"}\n')
    write_config(home, slack_block(receiver.url(HOOK)), SETTINGS)
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        write_template(template, '{"text": "broken",\n "n": {{ alert.id }\n}\n')
        await daemon.reload("New configuration refused", 1)
        append_alerts(alerts, range(0, 1))
        await until(lambda: len(texts(receiver)) == 1, 15, "the running template", daemon)

        # Mended, it applies on the next reload.
        write_template(template, '{"text": "mended {{ alert.id }}"}\n')
        await daemon.reload("Configuration reloaded:", 1)
        append_alerts(alerts, range(1, 2))
        await until(lambda: len(texts(receiver)) == 2, 15, "the mended template", daemon)
    finally:
        assert await daemon.stop() == 0
    assert texts(receiver) == ["kept 1764262800.0", "mended 1764262800.1"]
    log = daemon.log()
    assert "etc/templates/slack.json.j2:2: syntax error: unexpected '}'" in log
    assert "the running one stays in force" in log
