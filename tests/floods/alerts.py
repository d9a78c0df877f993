"""Alerts for the floods tests."""

from __future__ import annotations

from typing import Any


def alert(
    number: int = 0,
    *,
    rule_id: str = "5712",
    agent_id: str = "001",
    agent_name: str = "web01",
    level: int = 10,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-27T17:00:00.000+0000",
        "rule": {
            "level": level,
            "description": f"sshd: brute force {number}",
            "id": rule_id,
            "groups": ["syslog", "sshd"],
        },
        "agent": {"id": agent_id, "name": agent_name},
        "manager": {"name": "wazuh-manager"},
        "id": f"1764262800.{number}",
        "full_log": f"line {number}",
        "location": "/var/log/auth.log",
        **extra,
    }
