"""What a reload changes: which blocks run on untouched, which start again with
new settings, and which integrator.toml keys only a restart can apply.

Pure functions of the running and the new configuration, so that the reload
path in the pipeline only acts on their answer.
"""

from __future__ import annotations

import dataclasses

from wazuh_integrator.config.models import IntegrationBlock, Settings

__all__ = ["RESTART_ONLY_KEYS", "keys_needing_restart", "running_settings", "same_block"]

# integrator.toml key -> Settings field, for what is fixed once the daemon runs:
# the state database and the metrics listener are opened at start, the line
# limit sizes and follow sets up the open reader, plugin modules cannot be
# unloaded, a cluster role keeps the Redis connection and stream it started with,
# and the HTTP transport processes live as long as the sessions, for the whole run.
RESTART_ONLY_KEYS: dict[str, str] = {
    "state_dir": "state_dir",
    "metrics_address": "metrics_address",
    "max_line_bytes": "max_line_bytes",
    "follow": "follow",
    "plugins": "plugins",
    "cluster": "cluster",
    "http_processes": "http_processes",
}


def same_block(running: IntegrationBlock, new: IntegrationBlock) -> bool:
    """Whether ``new`` is ``running`` as written, wherever in the file it now sits.

    Compared field by field (a block's ``options`` is a dict, so blocks are
    not hashable); only the line may differ, since a comment added above a
    block moves it without changing what it does.
    """
    return dataclasses.replace(running, line=new.line) == new


def keys_needing_restart(running: Settings, new: Settings) -> list[str]:
    """The changed integrator.toml keys that a reload cannot apply."""
    return [
        key
        for key, field in RESTART_ONLY_KEYS.items()
        if getattr(running, field) != getattr(new, field)
    ]


def running_settings(running: Settings, new: Settings) -> Settings:
    """``new``, except for the restart-only keys, which keep their running values."""
    kept = {field: getattr(running, field) for field in RESTART_ONLY_KEYS.values()}
    return dataclasses.replace(new, **kept)
