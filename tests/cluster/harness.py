"""Readers and workers as real processes, each with its own log file."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.harness import Daemon, Receiver, short_home

HOOK = "/hooks/secret-token-cluster"


@dataclass
class Role(Daemon):
    """``run --role …`` in a subprocess; ``name`` keeps the logs apart."""

    name: str = "role"

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}.log"


def cluster_home(
    redis_url: str,
    receiver: Receiver,
    *,
    node: str = "",
    claim_idle: str = "2s",
    extra_settings: str = "",
    top_settings: str = "",
) -> Path:
    """A Wazuh home whose one shuffle block posts every alert to ``receiver``."""
    home = short_home()
    block = (
        "<integration><name>shuffle</name>"
        f"<hook_url>{receiver.url(HOOK)}</hook_url><alert_format>json</alert_format>"
        "</integration>"
    )
    (home / "etc" / "ossec.conf").write_text(f"<ossec_config>\n{block}\n</ossec_config>\n")
    node_line = f'node = "{node}"\n' if node else ""
    (home / "etc" / "integrator.toml").write_text(
        f'{top_settings}[cluster]\nredis_url = "{redis_url}"\n'
        f'{node_line}claim_idle = "{claim_idle}"\n'
        '[integrations.shuffle]\ninitial_backoff = "0.05s"\nmax_backoff = "0.5s"\n'
        f"{extra_settings}"
    )
    return home


@contextmanager
def removed_after(*homes: Path) -> Iterator[None]:
    try:
        yield
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return list(receiver.received.get(HOOK, []))


def delivered_ids(receiver: Receiver) -> Counter[str]:
    return Counter(str(body["id"]) for body in bodies(receiver))


def alerts_path(home: Path) -> Path:
    return home / "logs" / "alerts" / "alerts.json"
