"""``wazuh-integrator run``: the daemon, in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from wazuh_integrator.pipeline import RunOptions

log = logging.getLogger("wazuh_integrator.run")

# EX_CONFIG: what a restart cannot fix. The unit's RestartPreventExitStatus=
# names it, so that systemd does not restart the daemon in a loop.
EXIT_CONFIG = 78


def iso_time(text: str) -> datetime:
    """An argparse type: ISO 8601 time, a usage error otherwise."""
    from wazuh_integrator.source.archive import ArchiveError, parse_time

    try:
        return parse_time(text)
    except ArchiveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


# Clocks disagree a little (the admin's `date`, analysisd's stamps): a --since
# this much ahead of now is taken as meant for now.
_FUTURE_SLACK = timedelta(minutes=1)


def past_time(text: str) -> datetime:
    """An argparse type: :func:`iso_time`, not in the future.

    No alert is stamped later than now: a ``--since`` there (2027 typed for
    2026) would send nothing of the past, and ``run`` would save a checkpoint
    at the end of alerts.json, after which the right ``--since`` is ignored.
    """
    value = iso_time(text)
    now = datetime.now(timezone.utc)
    if value > now + _FUTURE_SLACK:
        raise argparse.ArgumentTypeError(
            f"{text!r} is in the future (it is {now.isoformat(timespec='seconds')} now):"
            " no alert is stamped then yet; check the date"
        )
    return value


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
        "--since",
        type=past_time,
        metavar="TIME",
        help="with no checkpoint yet, start at the first alert stamped at or after TIME"
        " (ISO 8601, e.g. 2026-11-27T17:00:00+00:00; local time without a zone), looking"
        " in the rotated files of logs/alerts/YYYY/Mon/ too; for a cutover from the stock"
        " daemon",
    )
    parser.add_argument(
        "--alerts",
        type=Path,
        metavar="PATH",
        help="alerts file (default: <home>/logs/alerts/alerts.json)",
    )
    parser.add_argument(
        "--role",
        choices=("reader", "worker"),
        help="cluster mode (needs [cluster] in integrator.toml): 'reader' appends this"
        " manager's matched alerts to the Redis stream, 'worker' delivers from it",
    )
    parser.add_argument(
        "--log-file", type=Path, metavar="PATH", help="append log lines here instead of stderr"
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.commands.check_config import check_before_run
    from wazuh_integrator.errors import ConfigError
    from wazuh_integrator.logsetup import configure_logging
    from wazuh_integrator.pipeline import RunOptions, run_pipeline
    from wazuh_integrator.statedir import StateDirError
    from wazuh_integrator.store import ForeignStateError

    if args.log_file is not None:
        configure_logging(options.debug, args.log_file)
    run_options = RunOptions(
        once=args.once,
        from_start=args.from_start,
        alerts_path=args.alerts,
        debug_level=options.debug,
        since=args.since,
    )
    try:
        if args.role is not None:
            return _run_role(args, options, run_options)
        report = check_before_run(options, args.alerts)
        if not report.errors and not report.enabled:
            _refuse_to_read_the_past_into_nothing(args, options)
        return run_pipeline(options.paths, run_options, report)
    except ConfigError as exc:
        problems = [str(issue) for issue in exc.issues]
        _refuse([*problems, "Configuration refused: not starting."], args.log_file is not None)
        return EXIT_CONFIG
    except (StateDirError, ForeignStateError) as exc:  # a restart cannot fix these either
        _refuse([str(exc)], args.log_file is not None)
        return EXIT_CONFIG


def _run_role(args: argparse.Namespace, options: GlobalOptions, run_options: RunOptions) -> int:
    from wazuh_integrator.cluster import run_role
    from wazuh_integrator.commands.check_config import check_before_run

    if args.role == "worker" and (args.once or args.from_start or args.alerts or args.since):
        raise ConfigError(
            [
                ConfigIssue(
                    "run",
                    None,
                    None,
                    "--role worker reads no alerts.json:"
                    " --once, --from-start, --since and --alerts are for readers",
                )
            ]
        )
    report = check_before_run(options, args.alerts, reads_alerts=args.role != "worker")
    return run_role(options.paths, run_options, args.role, report)


def _refuse_to_read_the_past_into_nothing(args: argparse.Namespace, options: GlobalOptions) -> None:
    """--once, --since and --from-start ask for alerts already written: with no
    enabled integration they would be read, go nowhere, and the checkpoint saved
    past them (the cutover's step without its --config lost alerts this way)."""
    from wazuh_integrator.config.ossec import moved_blocks_hint

    if not (args.once or args.since is not None or args.from_start):
        return  # the daemon: a reload may add blocks, as stock would start none
    hint = moved_blocks_hint(options.paths.config)
    message = (
        f"no enabled integration in {options.paths.config}: reading alerts already"
        " written would deliver none and save the checkpoint past them"
    )
    raise ConfigError(
        [ConfigIssue("run", None, None, message if hint is None else f"{message}; {hint}")]
    )


def _refuse(problems: list[str], also_stderr: bool) -> None:
    """Each problem in the log and, when the log is a file, on stderr too,
    where ``systemctl status`` and the journal show it."""
    for problem in problems:
        log.error("%s", problem)
        if also_stderr:
            print(f"wazuh-integrator: {problem}", file=sys.stderr)


COMMAND = Command(
    name="run",
    help="run the daemon: read alerts.json, filter, deliver",
    add_arguments=_add_arguments,
    run=_run,
    info_logs=True,
)
