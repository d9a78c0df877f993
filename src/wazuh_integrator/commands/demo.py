"""``wazuh-integrator demo``: the real daemon delivering to local receivers."""

from __future__ import annotations

import argparse
from pathlib import Path

from wazuh_integrator.commands import Command, GlobalOptions


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="lay the demo Wazuh home out here (new or empty; default: a new folder in /tmp)",
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.demo.runner import run_demo

    return run_demo(args.dir, debug=options.debug > 0)


COMMAND = Command(
    name="demo",
    help="show the daemon at work: sample Wazuh home, sample alerts, local receivers",
    add_arguments=_add_arguments,
    run=_run,
)
