"""A throw-away Wazuh home for one benchmark run, laid out as Wazuh lays it out:
etc/ossec.conf with ``<integration>`` blocks, etc/integrator.toml,
logs/alerts/alerts.json and integrations/custom-*."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

# The hook path looks like a Slack webhook's; nothing checks the token.
SLACK_HOOK = "/services/T0BENCH/B0BENCH/benchtoken"
SHUFFLE_HOOK = "/api/v1/hooks/webhook_bench"


def slack_block(url: str, filters: str = "") -> str:
    return (
        f"<integration><name>slack</name><hook_url>{url}</hook_url>"
        f"<alert_format>json</alert_format>{filters}</integration>"
    )


def shuffle_block(url: str, filters: str = "") -> str:
    return (
        f"<integration><name>shuffle</name><hook_url>{url}</hook_url>"
        f"<alert_format>json</alert_format>{filters}</integration>"
    )


def custom_block(name: str, filters: str = "") -> str:
    return (
        f"<integration><name>{name}</name><alert_format>json</alert_format>{filters}</integration>"
    )


class BenchHome:
    """A Wazuh home in /tmp (short: the analysisd socket path is limited)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="wi-bench-", dir="/tmp"))
        for sub in ("etc", "logs/alerts", "integrations", "queue/sockets"):
            (self.root / sub).mkdir(parents=True)

    @property
    def alerts(self) -> Path:
        return self.root / "logs" / "alerts" / "alerts.json"

    def configure(self, blocks: list[str], settings: str = "") -> None:
        (self.root / "etc" / "ossec.conf").write_text(
            "<ossec_config>\n" + "\n".join(blocks) + "\n</ossec_config>\n"
        )
        (self.root / "etc" / "integrator.toml").write_text(settings)

    def add_script(self, name: str, text: str) -> Path:
        path = self.root / "integrations" / name
        path.write_text(text)
        path.chmod(0o750)
        return path

    def __enter__(self) -> BenchHome:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
