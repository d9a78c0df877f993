"""bundle: targets, wheel metadata and the target's own requirement walk, on real wheel files.

Building a whole bundle needs the package index: that is tests/test_bundle_install.py,
marked ``bundle``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from wazuh_integrator import __version__
from wazuh_integrator.bundle import (
    BundleError,
    Target,
    WheelInfo,
    install_lines,
    needed_wheels,
    read_wheel,
)


def make_wheel(directory: Path, name: str, version: str, *requires: str) -> Path:
    """A real (tiny) wheel file: the name pip would give it and a METADATA inside."""
    stem = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{stem}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{stem}.dist-info/METADATA", metadata)
        archive.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


def index(*paths: Path) -> dict[NormalizedName, WheelInfo]:
    wheels = [read_wheel(path) for path in paths]
    return {wheel.name: wheel for wheel in wheels}


ROOT = canonicalize_name("wazuh-integrator")


@pytest.fixture
def ours(tmp_path: Path) -> Path:
    return make_wheel(
        tmp_path,
        "wazuh-integrator",
        "0.1.0",
        "aiohttp>=3.9",
        "uvloop>=0.19; sys_platform != 'win32'",
        "tomli>=2; python_version < '3.11'",
        "async-timeout>=4; python_version < '3.11'",
        "pytest>=8; extra == 'test'",
    )


def test_read_wheel_gives_name_version_and_requirements(ours: Path) -> None:
    wheel = read_wheel(ours)

    assert wheel.name == "wazuh-integrator"
    assert str(wheel.version) == "0.1.0"
    assert [str(r) for r in wheel.requires][:2] == [
        "aiohttp>=3.9",
        'uvloop>=0.19; sys_platform != "win32"',
    ]


def test_read_wheel_refuses_a_file_that_is_not_a_wheel(tmp_path: Path) -> None:
    path = tmp_path / "broken-1.0-py3-none-any.whl"
    path.write_bytes(b"not a zip")

    with pytest.raises(BundleError, match=r"broken-1.0-py3-none-any.whl: not a readable wheel"):
        read_wheel(path)


def test_python_310_needs_the_backports_that_311_does_not(ours: Path, tmp_path: Path) -> None:
    wheels = index(
        ours,
        make_wheel(tmp_path, "aiohttp", "3.14.5", "async-timeout>=4; python_version < '3.11'"),
        make_wheel(tmp_path, "uvloop", "0.23.0"),
        make_wheel(tmp_path, "tomli", "2.5.0"),
    )

    on_310 = needed_wheels(ROOT, wheels, Target(python="3.10"))
    on_311 = needed_wheels(ROOT, wheels, Target(python="3.11"))

    assert on_310.needed == {"wazuh-integrator", "aiohttp", "uvloop", "tomli"}
    assert [str(r) for r in on_310.missing] == ['async-timeout>=4; python_version < "3.11"']
    assert on_311.needed == {"wazuh-integrator", "aiohttp", "uvloop"}
    assert on_311.missing == ()
    assert on_310.conflicts == on_311.conflicts == ()


def test_extras_are_followed_only_when_asked_for(tmp_path: Path) -> None:
    wheels = index(
        make_wheel(tmp_path, "wazuh-integrator", "0.1.0", "aiohttp[speedups]>=3.9"),
        make_wheel(tmp_path, "aiohttp", "3.14.5", "aiodns>=3; extra == 'speedups'", "attrs"),
        make_wheel(tmp_path, "attrs", "26.1.0", "hypothesis; extra == 'tests'"),
    )

    closure = needed_wheels(ROOT, wheels, Target())

    assert closure.needed == {"wazuh-integrator", "aiohttp", "attrs"}
    assert [r.name for r in closure.missing] == ["aiodns"]


def test_a_version_the_requirement_excludes_is_a_conflict(tmp_path: Path) -> None:
    wheels = index(
        make_wheel(tmp_path, "wazuh-integrator", "0.1.0", "aiohttp>=3.9"),
        make_wheel(tmp_path, "aiohttp", "3.8.0"),
    )

    closure = needed_wheels(ROOT, wheels, Target())

    assert closure.conflicts == (
        "wazuh-integrator 0.1.0 needs aiohttp>=3.9, the bundle has aiohttp 3.8.0",
    )


def test_a_cycle_ends(tmp_path: Path) -> None:
    wheels = index(
        make_wheel(tmp_path, "wazuh-integrator", "0.1.0", "a"),
        make_wheel(tmp_path, "a", "1", "b"),
        make_wheel(tmp_path, "b", "1", "a"),
    )

    assert needed_wheels(ROOT, wheels, Target()).needed == {"wazuh-integrator", "a", "b"}


def test_platform_markers_are_the_targets(tmp_path: Path) -> None:
    wheels = index(
        make_wheel(
            tmp_path,
            "wazuh-integrator",
            "0.1.0",
            "only-arm; platform_machine == 'aarch64'",
            "only-intel; platform_machine == 'x86_64'",
            "only-windows; sys_platform == 'win32'",
        ),
    )

    arm = needed_wheels(ROOT, wheels, Target(arch="aarch64"))
    intel = needed_wheels(ROOT, wheels, Target(arch="x86_64"))

    assert [r.name for r in arm.missing] == ["only-arm"]
    assert [r.name for r in intel.missing] == ["only-intel"]


def test_target_names_the_bundle_and_the_platform_tags() -> None:
    target = Target(python="3.10", arch="aarch64")

    assert target.name == f"wazuh-integrator-{__version__}-cp310-manylinux_2_17_aarch64"
    assert target.platforms == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert Target(glibc="2.28").platforms == ["manylinux_2_28_x86_64"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"python": "3"}, "--python: expected a version like 3.10, got '3'"),
        ({"python": "3.9"}, "--python: wazuh-integrator needs Python 3.10 or newer, not 3.9"),
        ({"python": "2.7"}, "--python: expected a version like 3.10, got '2.7'"),
        ({"arch": "i686"}, "--arch: expected one of x86_64, aarch64, got 'i686'"),
        ({"glibc": "latest"}, "--glibc: expected a version like 2.17, got 'latest'"),
    ],
)
def test_a_bad_target_says_which_option_and_why(fields: dict[str, str], message: str) -> None:
    with pytest.raises(BundleError) as caught:
        Target(**fields)

    assert str(caught.value) == message


def test_install_lines_use_a_venv_from_wazuhs_python_and_no_index() -> None:
    lines = install_lines()

    assert "/var/ossec/framework/python/bin/python3 -m venv /opt/wazuh-integrator" in lines
    assert (
        "/opt/wazuh-integrator/bin/pip install --no-index --find-links . wazuh-integrator" in lines
    )
    assert not any("framework/python/bin/pip" in line for line in lines)


def test_bundle_outside_a_checkout_fails_clearly_before_any_download(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "bundle", "--output", str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == (
        f"wazuh-integrator: error: {tmp_path}: not a wazuh-integrator source tree"
        " (no pyproject.toml naming wazuh-integrator); run from the checkout or give --source DIR\n"
    )
    assert not (tmp_path / "out").exists()


def test_bundle_refuses_a_bad_option_before_anything_else(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "bundle", "--python", "3.9"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr == (
        "wazuh-integrator: error: --python: wazuh-integrator needs Python 3.10 or newer, not 3.9\n"
    )
