"""``wazuh-integrator test`` explains the floods stage, alert by alert."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from tests.config.wazuh_home import integration_block, make_home, ossec_conf, run_command
from tests.floods.alerts import alert

SETTINGS = """
[integrations.slack.throttle]
key = ["rule.id", "agent.id"]
window = "1h"
limit = 2

[integrations.slack.filter]
exclude_agents = ["db01"]

[integrations.shuffle.digest]
group_by = ["rule.id"]
group_wait = "30s"
max_alerts = 2
"""


def test_reasons_and_digests(tmp_path: Path) -> None:
    home = make_home(tmp_path / "ossec")
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url="https://hooks.slack.com/services/T/B/secret"),
            integration_block("shuffle", hook_url="https://shuffle.example/api/hook"),
        )
    )
    home.write_settings(SETTINGS)
    alerts = [alert(n) for n in range(3)] + [alert(3, agent_name="db01", agent_id="009")]
    source = tmp_path / "alerts.json"
    source.write_bytes(b"\n".join(orjson.dumps(a) for a in alerts) + b"\n")
    result = run_command("test", "--json", str(source), home=home.root)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    slack = [line["results"][0] for line in lines[:4]]
    shuffle = [line["results"][1] for line in lines[:4]]
    assert [r["reason"] for r in slack] == [
        None,
        None,
        "throttled: 3rd alert for rule.id=5712 agent.id=001 within 1h (limit 2)",
        "excluded: agent.name 'db01' in exclude_agents",
    ]
    assert [r["matched"] for r in slack] == [True, True, True, False]
    assert slack[0]["payload"] is not None and slack[2]["payload"] is None
    assert {r["reason"] for r in shuffle} == {"digest: held for group rule.id=5712"}
    assert {r["digest"] for r in shuffle} == {"rule.id=5712"}
    assert "digest" not in slack[0]
    (digest,) = lines[4:]
    assert digest["digest"] == "rule.id=5712" and digest["count"] == 4
    assert len(digest["payload"]["alerts"]) == 2

    readable = run_command("test", "--no-payload", str(source), home=home.root)
    assert "throttled: 3rd alert for rule.id=5712 agent.id=001 within 1h (limit 2)" in (
        readable.stdout
    )
    assert "digest for #1 shuffle, group rule.id=5712: 4 alert(s)" in readable.stdout
