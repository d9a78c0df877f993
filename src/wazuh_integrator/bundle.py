"""Offline bundles: this package and every dependency as wheels, for a manager without internet.

Built on a machine that reaches the package index, for a target platform and
Python (by default Wazuh's own CPython 3.10 on manylinux x86_64), then copied
to the manager and installed with ``pip install --no-index --find-links``.

pip downloads for a target with ``--platform`` and ``--python-version``, but it
evaluates environment markers (``tomli; python_version < "3.11"``) against the
Python that runs it (pypa/pip#11010). So the bundle is then walked from our
wheel with the *target's* markers, using each wheel's own metadata: what the
target needs and pip left out is downloaded, and what it does not need is
dropped. The result is checked, not trusted.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from wazuh_integrator import __version__
from wazuh_integrator.bundle_defaults import ARCHITECTURES, DEFAULT_GLIBC, DEFAULT_PYTHON
from wazuh_integrator.errors import IntegratorError

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_GLIBC",
    "DEFAULT_PYTHON",
    "PROJECT",
    "Bundle",
    "BundleError",
    "Closure",
    "Target",
    "WheelInfo",
    "build_bundle",
    "install_lines",
    "needed_wheels",
    "read_wheel",
]

PROJECT = "wazuh-integrator"
CHECKSUMS = "SHA256SUMS"
INSTRUCTIONS = "INSTALL.txt"
# Each round downloads what the last one found missing; a tree this size closes in two or three.
MAX_ROUNDS = 10


class BundleError(IntegratorError):
    """The bundle could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """The manager the bundle is for: its CPython version, CPU and glibc."""

    python: str = DEFAULT_PYTHON
    arch: str = "x86_64"
    glibc: str = DEFAULT_GLIBC

    def __post_init__(self) -> None:
        parts = self.python.split(".")
        if len(parts) != 2 or not all(part.isdigit() for part in parts) or parts[0] != "3":
            raise BundleError(f"--python: expected a version like 3.10, got {self.python!r}")
        if (int(parts[0]), int(parts[1])) < (3, 10):
            raise BundleError(f"--python: {PROJECT} needs Python 3.10 or newer, not {self.python}")
        if self.arch not in ARCHITECTURES:
            raise BundleError(
                f"--arch: expected one of {', '.join(ARCHITECTURES)}, got {self.arch!r}"
            )
        glibc = self.glibc.split(".")
        if len(glibc) != 2 or not all(part.isdigit() for part in glibc):
            raise BundleError(f"--glibc: expected a version like 2.17, got {self.glibc!r}")

    @property
    def python_tag(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def platforms(self) -> list[str]:
        """The platform tags pip may pick wheels for (it adds older glibc ones itself)."""
        major, minor = self.glibc.split(".")
        tags = [f"manylinux_{major}_{minor}_{self.arch}"]
        if self.glibc == "2.17":
            tags.append(f"manylinux2014_{self.arch}")  # the same tag under its older name
        return tags

    @property
    def name(self) -> str:
        major, minor = self.glibc.split(".")
        return f"{PROJECT}-{__version__}-{self.python_tag}-manylinux_{major}_{minor}_{self.arch}"

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values as the target's Python will see them."""
        full = f"{self.python}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "python_version": self.python,
            "sys_platform": "linux",
        }


@dataclass(frozen=True)
class WheelInfo:
    """One wheel in the bundle: its file, project name, version and requirements."""

    path: Path
    name: NormalizedName
    version: Version
    requires: tuple[Requirement, ...]


def read_wheel(path: Path) -> WheelInfo:
    """Name, version and ``Requires-Dist`` of a wheel, from its file name and METADATA."""
    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
        with zipfile.ZipFile(path) as archive:
            metadata_names = [
                member
                for member in archive.namelist()
                if member.count("/") == 1 and member.endswith(".dist-info/METADATA")
            ]
            if len(metadata_names) != 1:
                raise BundleError(f"{path}: not a wheel: no single .dist-info/METADATA")
            message = BytesParser().parsebytes(archive.read(metadata_names[0]))
        requires = tuple(Requirement(text) for text in message.get_all("Requires-Dist") or ())
    except (zipfile.BadZipFile, InvalidRequirement, ValueError) as exc:
        raise BundleError(f"{path}: not a readable wheel: {exc}") from exc
    return WheelInfo(path=path, name=name, version=version, requires=requires)


def _applies(requirement: Requirement, environment: Mapping[str, str], extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    marker: Marker = requirement.marker
    return any(marker.evaluate({**environment, "extra": extra}) for extra in extras | {""})


@dataclass(frozen=True)
class Closure:
    """What the target needs, walked from the root wheel with the target's markers."""

    needed: frozenset[NormalizedName]
    missing: tuple[Requirement, ...]  # needed, with no wheel in the bundle
    conflicts: tuple[str, ...]  # a wheel is there, in a version the requirement excludes


def needed_wheels(
    root: NormalizedName, wheels: Mapping[NormalizedName, WheelInfo], target: Target
) -> Closure:
    """Walk the requirements from *root* as the target's pip would."""
    environment = target.marker_environment()
    extras_seen: dict[NormalizedName, set[str]] = {root: set()}
    pending: list[NormalizedName] = [root]
    missing: dict[NormalizedName, Requirement] = {}
    conflicts: list[str] = []
    while pending:
        wheel = wheels[pending.pop()]
        for requirement in wheel.requires:
            if not _applies(requirement, environment, extras_seen[wheel.name]):
                continue
            name = canonicalize_name(requirement.name)
            present = wheels.get(name)
            if present is None:
                missing.setdefault(name, requirement)
                continue
            if not requirement.specifier.contains(present.version, prereleases=True):
                conflicts.append(
                    f"{wheel.name} {wheel.version} needs {requirement}, "
                    f"the bundle has {present.name} {present.version}"
                )
            known = extras_seen.get(name)
            wanted = set(requirement.extras)
            if known is None or not wanted <= known:
                extras_seen[name] = (known or set()) | wanted
                pending.append(name)
    return Closure(
        needed=frozenset(extras_seen),
        missing=tuple(missing.values()),
        conflicts=tuple(conflicts),
    )


def _index(directory: Path) -> dict[NormalizedName, WheelInfo]:
    wheels: dict[NormalizedName, WheelInfo] = {}
    for path in sorted(directory.glob("*.whl")):
        info = read_wheel(path)
        if info.name in wheels:
            raise BundleError(
                f"two wheels of {info.name}: {wheels[info.name].path.name} and {path.name}"
            )
        wheels[info.name] = info
    return wheels


def _pip(arguments: list[str], what: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *arguments]
    # pip's own output goes to the terminal: when the index cannot be reached,
    # or a wheel does not exist for the target, pip says which.
    result = subprocess.run(command, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise BundleError(f"{what} failed (pip exit {result.returncode}; pip said why above)")


def _download(requirements: Iterable[str], target: Target, directory: Path) -> None:
    arguments = ["download", "--only-binary=:all:", "--dest", str(directory)]
    arguments += ["--implementation", "cp", "--python-version", target.python]
    for platform in target.platforms:
        arguments += ["--platform", platform]
    _pip([*arguments, *requirements], f"downloading wheels for {target.name}")


def _check_source(source: Path) -> None:
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file() or f'name = "{PROJECT}"' not in pyproject.read_text():
        raise BundleError(
            f"{source}: not a {PROJECT} source tree (no pyproject.toml naming {PROJECT});"
            " run from the checkout or give --source DIR"
        )


def _build_own_wheel(source: Path, directory: Path) -> Path:
    _pip(["wheel", "--no-deps", "--wheel-dir", str(directory), str(source)], f"building {PROJECT}")
    built = sorted(directory.glob(f"{PROJECT.replace('-', '_')}-*.whl"))
    if len(built) != 1:
        raise BundleError(f"building {PROJECT} left {len(built)} wheels, expected one")
    return built[0]


def _complete(root: NormalizedName, directory: Path, target: Target) -> list[WheelInfo]:
    """Download what the target needs and pip left out; drop what it does not need."""
    for _round in range(MAX_ROUNDS):
        wheels = _index(directory)
        closure = needed_wheels(root, wheels, target)
        if closure.conflicts:
            raise BundleError(
                "the downloaded versions do not fit together for the target: "
                + "; ".join(closure.conflicts)
            )
        if not closure.missing:
            for name, wheel in wheels.items():
                if name not in closure.needed:
                    wheel.path.unlink()
            return sorted((wheels[name] for name in closure.needed), key=lambda w: w.name)
        # Without their markers: these do apply to the target, whatever pip thinks of the host.
        specs = [
            f"{r.name}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''}{r.specifier}"
            for r in closure.missing
        ]
        _download(specs, target, directory)
    raise BundleError(f"the requirements did not settle after {MAX_ROUNDS} rounds of downloads")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_lines() -> list[str]:
    """The commands an administrator runs on the manager, from inside the unpacked bundle."""
    return [
        f"sha256sum -c {CHECKSUMS}",
        "/var/ossec/framework/python/bin/python3 -m venv /opt/wazuh-integrator",
        f"/opt/wazuh-integrator/bin/pip install --no-index --find-links . {PROJECT}",
        "/opt/wazuh-integrator/bin/wazuh-integrator --version",
    ]


def _instructions(target: Target, wheels: list[WheelInfo]) -> str:
    listed = "\n".join(f"  {wheel.path.name}" for wheel in wheels)
    commands = "\n".join(f"  {line}" for line in install_lines())
    return (
        f"{PROJECT} {__version__} offline bundle for CPython {target.python}"
        f" on Linux {target.arch} (glibc {target.glibc} or newer).\n\n"
        "On the manager, inside this folder (no package index is contacted):\n\n"
        f"{commands}\n\n"
        f"The venv's python must be CPython {target.python}: Wazuh 4.x's own is 3.10.\n"
        "Never pip install into /var/ossec/framework/python itself: Wazuh's API\n"
        "depends on the packages pinned there.\n\n"
        f"Wheels ({len(wheels)}):\n{listed}\n"
    )


@dataclass(frozen=True)
class Bundle:
    """A built bundle: the tarball, the wheels in it, the tarball's SHA-256."""

    tarball: Path
    wheels: tuple[str, ...]
    sha256: str


def build_bundle(source: Path, output: Path, target: Target) -> Bundle:
    """Build ``<output>/<target.name>.tar.gz``: wheels, SHA256SUMS and INSTALL.txt."""
    source = source.resolve()
    _check_source(source)
    output.mkdir(parents=True, exist_ok=True)
    tarball = output / f"{target.name}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="wazuh-integrator-bundle-") as work:
        folder = Path(work) / target.name
        folder.mkdir()
        own = _build_own_wheel(source, folder)
        root = read_wheel(own).name
        _download([str(own)], target, folder)
        wheels = _complete(root, folder, target)
        sums = "".join(f"{_sha256(w.path)}  {w.path.name}\n" for w in wheels)
        (folder / CHECKSUMS).write_text(sums)
        (folder / INSTRUCTIONS).write_text(_instructions(target, wheels))
        partial = tarball.with_name(tarball.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(folder, arcname=target.name)
        partial.replace(tarball)
    return Bundle(
        tarball=tarball,
        wheels=tuple(w.path.name for w in wheels),
        sha256=_sha256(tarball),
    )
