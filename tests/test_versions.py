"""``wazuh-integrator --version``: the lines a bug report needs, from the installed command."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from wazuh_integrator import __version__
from wazuh_integrator.versions import REPORTED_PACKAGES


def run_version(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_names_ours_python_and_each_library() -> None:
    result = run_version("--version")

    assert result.returncode == 0
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"wazuh-integrator {__version__}"
    assert lines[1] == (
        f"Python {platform.python_version()} ({platform.python_implementation()})"
        f" at {sys.executable}"
    )
    assert lines[2].startswith(f"System {platform.system()} {platform.machine()}")
    assert lines[3:] == [f"{name} {metadata.version(name)}" for name in REPORTED_PACKAGES]
    assert [line.split()[0] for line in lines[3:]] == [
        "aiohttp",
        "httptools",
        "orjson",
        "msgspec",
        "uvloop",
    ]


def test_version_after_other_options_still_only_reports() -> None:
    result = run_version("--home", "/nonexistent", "--version")

    assert result.returncode == 0
    assert result.stdout.startswith(f"wazuh-integrator {__version__}\n")


def test_a_library_that_is_missing_is_said_so() -> None:
    # A Python without uvloop (Windows, or a stripped install) must still answer.
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from importlib import metadata\n"
        "real = metadata.version\n"
        "def fake(name):\n"
        "    if name == 'uvloop':\n"
        "        raise metadata.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "metadata.version = fake\n"
        "from wazuh_integrator.cli import main\n"
        "sys.exit(main(['--version']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "uvloop not installed"
