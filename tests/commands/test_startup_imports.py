"""What ``run`` imports at start-up: what only some configurations need
(Jinja2 for templates, redis for cluster mode, aiohttp's server for metrics,
packaging for ``bundle``, aiosmtplib for email) stays out of a daemon whose
configuration does not use it, and comes in at start-up when it does.

Each case starts a real ``run --once`` on an empty alerts file and reads
the names of the modules in its ``sys.modules`` as it exits. (``-X importtime``
would miss modules loaded through ``importlib.import_module``.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.config.wazuh_home import WazuhHome, integration_block, make_home, ossec_conf

from wazuh_integrator.templating import default_template

# Imported by run for some configurations only: none of them by the plain one.
ONLY_WHEN_CONFIGURED = (
    "jinja2",
    "markupsafe",
    "wazuh_integrator.templating.template",
    "redis",
    "wazuh_integrator.cluster",
    "aiohttp.web",
    "aiosmtplib",
    "packaging",
    "wazuh_integrator.bundle",
)
HOOK = "http://127.0.0.1:9/services/T000/B000/startuptoken"


@pytest.fixture
def home(tmp_path: Path) -> WazuhHome:
    home = make_home(tmp_path / "ossec")
    home.write_config(
        ossec_conf(
            integration_block("slack", hook_url=HOOK, alert_format="json", level="15"),
            integration_block("custom-startup", alert_format="json", level="15"),
        )
    )
    home.add_script("custom-startup")
    return home


# ``python -m wazuh_integrator ...`` that writes, as it exits, every module it imported.
RUN_AND_LIST_MODULES = """
import atexit, runpy, sys
listing = sys.argv.pop(1)
atexit.register(lambda: open(listing, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("wazuh_integrator", run_name="__main__", alter_sys=True)
"""


def imported_by_run(home: WazuhHome, tmp_path: Path) -> set[str]:
    """The modules a ``run --once`` on an empty alerts file imported."""
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    listing = tmp_path / "modules.txt"
    environment = {k: v for k, v in os.environ.items() if k != "WAZUH_HOME"}
    command = [sys.executable, "-c", RUN_AND_LIST_MODULES, str(listing)]
    result = subprocess.run(
        [*command, "--home", str(home.root), "run", "--once", "--alerts", str(empty)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 lines read" in result.stdout
    return set(listing.read_text().split())


def test_a_plain_configuration_imports_none_of_the_optional_parts(
    home: WazuhHome, tmp_path: Path
) -> None:
    imported = imported_by_run(home, tmp_path)

    assert "wazuh_integrator.pipeline" in imported  # the run did start a pipeline
    assert sorted(set(ONLY_WHEN_CONFIGURED) & imported) == []


def test_a_configured_template_brings_jinja2_in_at_start_up(
    home: WazuhHome, tmp_path: Path
) -> None:
    templates = home.root / "etc" / "templates"
    templates.mkdir()
    (templates / "slack.json.j2").write_text(default_template("slack.json.j2").source)
    home.write_settings('[integrations.slack]\ntemplate = "etc/templates/slack.json.j2"\n')

    imported = imported_by_run(home, tmp_path)

    # Compiled before the first alert (there is none): a broken template or a
    # missing Jinja2 is reported at start-up, as before.
    assert {"jinja2", "wazuh_integrator.templating.template"} <= imported


def test_a_metrics_address_brings_aiohttps_server_in(home: WazuhHome, tmp_path: Path) -> None:
    home.write_settings('metrics_address = "127.0.0.1:0"\n')

    imported = imported_by_run(home, tmp_path)

    assert "aiohttp.web" in imported
    assert "jinja2" not in imported


def test_an_output_that_renders_a_shipped_default_compiles_it_at_start_up(
    home: WazuhHome, tmp_path: Path
) -> None:
    home.write_config(
        ossec_conf(integration_block("teams", hook_url=HOOK, alert_format="json", level="15"))
    )

    imported = imported_by_run(home, tmp_path)

    assert {"jinja2", "wazuh_integrator.templating.template"} <= imported
