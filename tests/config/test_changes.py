"""config/changes.py: what a reload keeps, restarts, or leaves for a restart."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wazuh_integrator.config.changes import keys_needing_restart, running_settings, same_block
from wazuh_integrator.config.models import (
    IntegrationBlock,
    IntegrationSettings,
    RateLimit,
    Settings,
)

BLOCK = IntegrationBlock(
    index=0, path="etc/ossec.conf", line=3, name="slack", options={"pretext": "x", "n": [1]}
)


def test_a_block_with_options_compares_without_being_hashed() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(BLOCK)  # why a reload must never put blocks in a dict or a set
    assert same_block(BLOCK, dataclasses.replace(BLOCK, options={"n": [1], "pretext": "x"}))


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"line": 40}, True),  # a comment added above it
        ({"options": {"pretext": "y", "n": [1]}}, False),
        ({"level": 7}, False),
        ({"index": 1}, False),
    ],
)
def test_same_block_ignores_only_the_line(change: dict[str, object], same: bool) -> None:
    assert same_block(BLOCK, dataclasses.replace(BLOCK, **change)) is same  # type: ignore[arg-type]


def test_restart_only_keys_are_named_and_keep_their_running_values() -> None:
    running = Settings(metrics_address="127.0.0.1:9758", state_dir=Path("var/integrator"))
    new = Settings(
        metrics_address="127.0.0.1:9759",
        state_dir=Path("var/elsewhere"),
        grace_period_s=3.0,
        integrations={"slack": IntegrationSettings(rate_limits=(RateLimit(1, 1.0),))},
    )
    assert keys_needing_restart(running, new) == ["state_dir", "metrics_address"]
    applied = running_settings(running, new)
    assert applied.metrics_address == "127.0.0.1:9758"
    assert applied.state_dir == Path("var/integrator")
    assert applied.grace_period_s == 3.0  # applied live
    assert applied.for_integration("slack").rate_limits == (RateLimit(1, 1.0),)
    assert keys_needing_restart(running, running) == []


def test_how_alerts_json_is_followed_is_kept_until_a_restart() -> None:
    running = Settings()
    new = Settings(follow="poll")
    assert keys_needing_restart(running, new) == ["follow"]
    assert running_settings(running, new).follow == "auto"


def test_the_number_of_http_processes_is_kept_until_a_restart() -> None:
    running = Settings()
    new = Settings(http_processes=0)
    assert keys_needing_restart(running, new) == ["http_processes"]
    assert running_settings(running, new).http_processes is None
