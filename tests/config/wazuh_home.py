"""A throw-away Wazuh home for configuration and command tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class WazuhHome:
    root: Path

    @property
    def ossec_conf(self) -> Path:
        return self.root / "etc" / "ossec.conf"

    @property
    def settings(self) -> Path:
        return self.root / "etc" / "integrator.toml"

    def write_config(self, text: str) -> Path:
        self.ossec_conf.write_text(text, encoding="utf-8")
        return self.ossec_conf

    def copy_config(self, name: str) -> Path:
        shutil.copyfile(DATA / "ossec" / name, self.ossec_conf)
        return self.ossec_conf

    def write_settings(self, text: str) -> Path:
        self.settings.write_text(text, encoding="utf-8")
        return self.settings

    def add_script(self, name: str, *, executable: bool = True) -> Path:
        script = self.root / "integrations" / name
        script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        script.chmod(0o750 if executable else 0o640)
        return script


def make_home(root: Path) -> WazuhHome:
    for directory in ("etc", "integrations", "logs/alerts"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    return WazuhHome(root)


def integration_block(name: str, **elements: str) -> str:
    body = "".join(f"    <{tag}>{text}</{tag}>\n" for tag, text in elements.items())
    return f"  <integration>\n    <name>{name}</name>\n{body}  </integration>\n"


def ossec_conf(*blocks: str) -> str:
    return "<ossec_config>\n" + "".join(blocks) + "</ossec_config>\n"


def installed_command() -> str:
    """The wazuh-integrator script installed next to this interpreter."""
    found = shutil.which("wazuh-integrator", path=str(Path(sys.executable).parent))
    assert found, "wazuh-integrator is not installed in this environment"
    return found


def run_command(
    *args: str,
    home: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "WAZUH_HOME"}
    environment.update(env or {})
    home_args = ["--home", str(home)] if home is not None else []
    return subprocess.run(
        [installed_command(), *home_args, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )
