"""``wazuh-integrator run``: the daemon, in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from wazuh_integrator.commands import Command, GlobalOptions


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="process what alerts.json holds (from the checkpoint, else from its start),"
        " wait for every delivery to settle, then exit",
    )
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="with no checkpoint yet, start at the beginning of alerts.json instead of its end",
    )
    parser.add_argument(
        "--alerts",
        type=Path,
        metavar="PATH",
        help="alerts file (default: <home>/logs/alerts/alerts.json)",
    )
    parser.add_argument(
        "--log-file", type=Path, metavar="PATH", help="append log lines here instead of stderr"
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.commands.check_config import check_before_run
    from wazuh_integrator.logsetup import configure_logging
    from wazuh_integrator.pipeline import RunOptions, run_pipeline

    if args.log_file is not None:
        configure_logging(options.debug, args.log_file)
    check_before_run(options, args.alerts)
    run_options = RunOptions(
        once=args.once,
        from_start=args.from_start,
        alerts_path=args.alerts,
        debug_level=options.debug,
    )
    return run_pipeline(options.paths, run_options)


COMMAND = Command(
    name="run",
    help="run the daemon: read alerts.json, filter, deliver",
    add_arguments=_add_arguments,
    run=_run,
    info_logs=True,
)
