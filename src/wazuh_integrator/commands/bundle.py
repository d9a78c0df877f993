"""``wazuh-integrator bundle``: an offline install bundle for a manager without internet."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from wazuh_integrator.commands import Command, GlobalOptions

_THIS_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from wazuh_integrator.bundle_defaults import ARCHITECTURES, DEFAULT_GLIBC, DEFAULT_PYTHON

    parser.add_argument(
        "--python",
        default=DEFAULT_PYTHON,
        metavar="X.Y",
        help=f"the manager's CPython version (default: {DEFAULT_PYTHON}, Wazuh 4.x's own)",
    )
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default=_THIS_ARCH.get(platform.machine().lower(), "x86_64"),
        help="the manager's CPU (default: this machine's)",
    )
    parser.add_argument(
        "--glibc",
        default=DEFAULT_GLIBC,
        metavar="X.Y",
        help=f"the oldest glibc the wheels may need (default: {DEFAULT_GLIBC}, manylinux2014)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the wazuh-integrator checkout to build from (default: the current directory)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("dist"),
        metavar="DIR",
        help="where to write the .tar.gz (default: dist)",
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.bundle import Target, build_bundle, install_lines

    target = Target(python=args.python, arch=args.arch, glibc=args.glibc)
    bundle = build_bundle(args.source, args.output, target)
    print(f"\nBundle   {bundle.tarball}")
    print(f"SHA-256  {bundle.sha256}")
    print(f"Wheels   {len(bundle.wheels)}: {', '.join(bundle.wheels)}")
    print(f"\nOn the manager: tar xzf {bundle.tarball.name} && cd {target.name}")
    for line in install_lines():
        print(f"  {line}")
    return 0


COMMAND = Command(
    name="bundle",
    help="build an offline install bundle (all wheels) for a manager without internet",
    description=(
        "Build a .tar.gz of wazuh-integrator and every dependency as wheels for one"
        " platform and Python, with SHA256SUMS and INSTALL.txt. Needs the package index"
        " (or a mirror pip is set up for) on this machine; the manager needs none."
    ),
    add_arguments=_add_arguments,
    run=_run,
)
