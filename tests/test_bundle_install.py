"""The offline bundle, built for real and installed with ``--no-index`` into a fresh venv.

Building it needs the package index (or the mirror pip is set up for), so these
tests are marked ``bundle`` and left out of the default run; ``.ci/run`` runs them
(``pytest -m bundle``). Installing it uses nothing but the bundle: pip runs with no
configuration file, no ``PIP_*`` variables and ``--no-index``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from wazuh_integrator import __version__
from wazuh_integrator.bundle import Target

pytestmark = pytest.mark.bundle

ROOT = Path(__file__).resolve().parents[1]
PYENV = Path.home() / ".pyenv" / "versions"
THIS_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine())
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# The other Python of the two CI runs the suite on. Built on 3.11 for Wazuh's 3.10, the
# bundle must carry what only 3.10 needs (tomli, async-timeout); built on 3.10 for 3.11, not.
OTHER_PYTHON, OTHER_BUILD = ("3.11", "3.11.7") if THIS_PYTHON == "3.10" else ("3.10", "3.10.13")
LAY_OUT_DEMO_HOME = (
    "import pathlib, sys\n"
    "from wazuh_integrator.demo.runner import lay_out_home\n"
    "lay_out_home(pathlib.Path(sys.argv[1]))\n"
)


def offline_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no index, mirror or find-links from any pip.conf
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(
    command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(THIS_ARCH is None, reason=f"no manylinux bundle for {platform.machine()}")
@pytest.mark.parametrize(
    ("version", "python"),
    [
        (THIS_PYTHON, Path(sys.executable)),
        (OTHER_PYTHON, PYENV / OTHER_BUILD / "bin" / "python3"),
    ],
    ids=["this-python", "other-python"],
)
def test_bundle_installs_offline_and_runs(version: str, python: Path, tmp_path: Path) -> None:
    if not python.exists():
        build = python.parents[1].name
        pytest.fail(f"{python} is missing: install it with `pyenv install {build}`")
    assert THIS_ARCH is not None
    target = Target(python=version, arch=THIS_ARCH)

    built = run(
        [sys.executable, "-m", "wazuh_integrator", "bundle", "--python", version,
         "--arch", THIS_ARCH, "--source", ROOT, "--output", tmp_path / "dist"],
    )  # fmt: skip
    tarball = tmp_path / "dist" / f"{target.name}.tar.gz"
    assert f"SHA-256  {sha256(tarball)}" in built.stdout

    # The manager's side: unpack, check the sums, a fresh venv, install from the folder only.
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path / "manager", filter="data")
    bundle = tmp_path / "manager" / target.name
    sums = (bundle / "SHA256SUMS").read_text().splitlines()
    wheels = sorted(path.name for path in bundle.glob("*.whl"))
    assert sorted(line.split("  ")[1] for line in sums) == wheels
    for line in sums:
        digest, name = line.split("  ")
        assert sha256(bundle / name) == digest, name
    names = {name.split("-")[0].lower() for name in wheels}
    assert {"wazuh_integrator", "aiohttp", "orjson", "msgspec", "uvloop", "packaging"} <= names
    backports = {"tomli", "async_timeout"}
    assert backports <= names if version == "3.10" else not backports & names
    assert "--no-index --find-links . wazuh-integrator" in (bundle / "INSTALL.txt").read_text()

    venv = tmp_path / "opt-wazuh-integrator"
    run([python, "-m", "venv", venv])
    run(
        [venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", ".",
         "wazuh-integrator"],
        cwd=bundle,
        env=offline_env(),
    )  # fmt: skip
    installed = venv / "bin" / "wazuh-integrator"

    report = run([installed, "--version"]).stdout.splitlines()
    assert report[0] == f"wazuh-integrator {__version__}"
    assert report[1].startswith(f"Python {version}.")
    assert all("not installed" not in line for line in report)

    # The demo home, from the installed package, with its receivers' address filled in.
    home = tmp_path / "home"
    run([venv / "bin" / "python", "-c", LAY_OUT_DEMO_HOME, home])
    config = home / "etc" / "ossec.conf"
    stand_ins = {
        "{{RECEIVER}}": "http://127.0.0.1:9",
        "{{SMTP}}": "smtp://127.0.0.1:9",
        "{{SYSLOG}}": "udp://127.0.0.1:9",
    }
    text = config.read_text()
    for placeholder, address in stand_ins.items():
        text = text.replace(placeholder, address)
    assert "{{" not in text, "a demo receiver placeholder this test does not fill in"
    config.write_text(text)

    checked = run([installed, "--home", home, "check-config"])
    assert "Result: OK" in checked.stdout
    # The demo's alerts.json holds one line that is not JSON on purpose; `test` would
    # (rightly) exit 2 for it. Test the real alerts only.
    alerts = (home / "logs" / "alerts" / "alerts.json").read_text().splitlines()
    sample = tmp_path / "alerts-sample.json"
    sample.write_text("".join(line + "\n" for line in alerts if line.startswith("{")))
    tested = run([installed, "--home", home, "test", sample])
    assert "MATCH" in tested.stdout
    assert "slack" in tested.stdout
