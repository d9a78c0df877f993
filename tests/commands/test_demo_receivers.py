"""``wazuh-integrator demo``: the real daemon delivers to every stand-in."""

from __future__ import annotations

import re
from pathlib import Path

from tests.config.wazuh_home import run_command


def test_demo_reaches_every_receiver(tmp_path: Path) -> None:
    result = run_command("demo", "--dir", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(re.findall(r"^  (\w+) +(\d+) ", result.stdout, flags=re.MULTILINE))
    expected = {"email": "3", "syslog": "8", "opsgenie": "2", "thehive": "3"}
    assert {name: counts.get(name) for name in expected} == expected, result.stdout
    assert all(int(counts[name]) > 0 for name in ("slack", "pagerduty", "shuffle", "analysisd"))
    assert "First email: '[Wazuh] Level 10, rule 5763" in result.stdout
    assert "parts ['text/plain', 'text/html']" in result.stdout
    assert re.search(
        r"^<133>1 2026-11-27T17:00:01\.120\+00:00 wazuh-manager wazuh - 5716 \[",
        result.stdout,
        re.MULTILINE,
    )
    assert "not-real" not in result.stdout + result.stderr
