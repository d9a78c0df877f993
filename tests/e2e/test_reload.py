"""End-to-end: ``SIGHUP`` reloads of the real ``run``, blocks with ``<options>`` included."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from tests.e2e.harness import (
    Daemon,
    Receiver,
    alerts_file,
    append_alerts,
    free_port,
    slack_block,
    until,
    write_config,
)

HOOK = "/services/T0/B0/reload-token"
OPTIONS = '<options>{"pretext": "from the options"}</options>'


async def reload_counter(port: int) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        text = await answer.text()
    return next(
        line
        for line in text.splitlines()
        if line.startswith('wazuh_integrator_config_reloads_total{result="applied"}')
    )


async def test_reloads_apply_again_and_again_with_options(home: Path, receiver: Receiver) -> None:
    port = await free_port()
    settings = f'metrics_address = "127.0.0.1:{port}"\n'
    write_config(home, slack_block(receiver.url(HOOK), OPTIONS), settings)
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        append_alerts(alerts, range(0, 2), level=5)
        await until(lambda: len(receiver.received.get(HOOK, [])) == 2, 15, "first two", daemon)

        # 1st reload: a level filter; level-5 alerts now stop at the filter.
        write_config(home, slack_block(receiver.url(HOOK), OPTIONS + "<level>10</level>"), settings)
        await daemon.reload("Configuration reloaded:", 1)
        append_alerts(alerts, range(2, 4), level=5)
        append_alerts(alerts, range(4, 5), level=12)
        await until(lambda: len(receiver.received.get(HOOK, [])) == 3, 15, "level 12", daemon)

        # 2nd: the filter goes again. 3rd: nothing changed at all.
        write_config(home, slack_block(receiver.url(HOOK), OPTIONS), settings)
        await daemon.reload("Configuration reloaded:", 2)
        await daemon.reload("Configuration reloaded:", 3)
        append_alerts(alerts, range(5, 6), level=5)
        await until(lambda: len(receiver.received.get(HOOK, [])) == 4, 15, "after 3rd", daemon)
        applied = await reload_counter(port)
    finally:
        assert await daemon.stop() == 0
    ids = sorted(receiver.ids(HOOK))
    assert ids == [f"1764262800.{n}" for n in (0, 1, 4, 5)]
    assert all(
        body["attachments"][0]["pretext"] == "from the options" for body in receiver.received[HOOK]
    )
    assert float(applied.split()[-1]) == 3, applied
    log = daemon.log()
    assert "TypeError" not in log
    assert "1 integration(s) unchanged, 0 started, 0 restarted with new settings, 0 stopped" in log


async def test_a_broken_configuration_is_refused_and_the_old_one_runs_on(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK), OPTIONS))
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        (home / "etc" / "ossec.conf").write_text(
            "<ossec_config><integration><name>slack</name><options>[1]</options>"
            "</integration></ossec_config>"
        )
        await daemon.reload("New configuration refused", 1)
        append_alerts(alerts, range(0, 1))
        await until(lambda: len(receiver.received.get(HOOK, [])) == 1, 15, "old config", daemon)
        # A good configuration after a refused one is applied.
        write_config(home, slack_block(receiver.url(HOOK), "<level>12</level>"))
        await daemon.reload("Configuration reloaded:", 1)
        append_alerts(alerts, range(1, 2), level=10)
        append_alerts(alerts, range(2, 3), level=13)
        await until(lambda: len(receiver.received.get(HOOK, [])) == 2, 15, "new config", daemon)
    finally:
        assert await daemon.stop() == 0
    assert sorted(receiver.ids(HOOK)) == ["1764262800.0", "1764262800.2"]
    assert "<options>: must be a JSON object, not an array" in daemon.log()


async def test_integrator_toml_changes_apply_live_or_are_named_for_a_restart(
    home: Path, receiver: Receiver
) -> None:
    write_config(home, slack_block(receiver.url(HOOK), OPTIONS))
    alerts = alerts_file(home)
    alerts.write_bytes(b"")
    daemon = Daemon(home)
    await daemon.start()
    try:
        await daemon.wait_for_log("Reading")
        port = await free_port()
        (home / "etc" / "integrator.toml").write_text(
            f'metrics_address = "127.0.0.1:{port}"\n'
            'state_dir = "var/elsewhere"\n'
            '[integrations.slack]\nrate_limit = "1/hour"\n'
        )
        await daemon.reload("Configuration reloaded:", 1)
        append_alerts(alerts, range(0, 3))
        await until(lambda: len(receiver.received.get(HOOK, [])) >= 1, 15, "one send", daemon)
        # The new limit holds the other two back: none arrives while we watch.
        await asyncio.sleep(1.5)
        sent_under_limit = len(receiver.received.get(HOOK, []))
    finally:
        assert await daemon.stop() == 0
    assert sent_under_limit == 1
    log = daemon.log()
    assert "0 integration(s) unchanged, 0 started, 1 restarted with new settings, 0 stopped" in log
    assert "integrator.toml: 'metrics_address' changed: it applies at the next restart" in log
    assert "integrator.toml: 'state_dir' changed: it applies at the next restart" in log
    # The running state directory stayed: its checkpoint is where it was.
    assert (home / "var" / "integrator" / "state.db").exists()
    assert not (home / "var" / "elsewhere").exists()
