"""The ``wazuh-integrator`` command line.

Global options may come before or after the subcommand. Every failure ends as
one line per problem on stderr and an exit status, never a traceback (``-d``
shows the traceback of an unexpected error, for a bug report).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from wazuh_integrator.commands import Command, GlobalOptions, load_commands
from wazuh_integrator.config.models import DEFAULT_HOME
from wazuh_integrator.errors import ConfigError, IntegratorError
from wazuh_integrator.secret import redact_urls_in

__all__ = ["main"]

log = logging.getLogger(__name__)

PROG = "wazuh-integrator"
HOME_VARIABLE = "WAZUH_HOME"
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE
EXIT_INTERRUPTED = 130

_DEBUG_BEFORE_COMMAND = "debug_before"
_DEBUG_AFTER_COMMAND = "debug_after"
_DEBUG_AFTER_ACTION = "debug_after_action"


def _add_global_options(
    parser: argparse.ArgumentParser, *, after_command: bool, debug_dest: str
) -> None:
    # After the subcommand the options default to SUPPRESS, so that one given
    # before it is not overwritten by the subparser's default. Each level counts
    # its ``-d`` under a name of its own: argparse parses a subcommand into a
    # fresh namespace and copies it over, so a shared count would lose the
    # ``-d`` given before a sub-subcommand (``dead-letter -d list``).
    default = argparse.SUPPRESS if after_command else None
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--home",
        type=Path,
        default=default,
        metavar="DIR",
        help=f"Wazuh home (default: ${HOME_VARIABLE}, else {DEFAULT_HOME})",
    )
    group.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="PATH",
        help="ossec.conf to read (default: <home>/etc/ossec.conf)",
    )
    group.add_argument(
        "--settings",
        type=Path,
        default=default,
        metavar="PATH",
        help="integrator.toml to read (default: <home>/etc/integrator.toml)",
    )
    group.add_argument(
        "-d",
        dest=debug_dest,
        action="count",
        default=default if after_command else 0,
        help="debug output; repeat (-dd) for more",
    )


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """The global options, for a command's own sub-subcommands to accept too."""
    _add_global_options(parser, after_command=True, debug_dest=_DEBUG_AFTER_ACTION)


class _VersionAction(argparse.Action):
    """``--version``: the report is built only when asked for (it reads package metadata)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from wazuh_integrator.versions import version_report

        print(version_report())
        parser.exit()


def build_parser(commands: list[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="A fast, lossless replacement for Wazuh's Integrator daemon."
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the version, the Python it runs on and its key libraries' versions",
    )
    _add_global_options(parser, after_command=False, debug_dest=_DEBUG_BEFORE_COMMAND)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands:
        sub = subparsers.add_parser(
            command.name, help=command.help, description=command.description or command.help
        )
        command.add_arguments(sub)
        _add_global_options(sub, after_command=True, debug_dest=_DEBUG_AFTER_COMMAND)
        sub.set_defaults(command_object=command)
    return parser


def _global_options(args: argparse.Namespace) -> GlobalOptions:
    home = args.home
    if home is None:
        home = Path(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME)
    return GlobalOptions(
        home=home,
        config=args.config,
        settings=args.settings,
        debug=sum(
            getattr(args, dest, 0)
            for dest in (_DEBUG_BEFORE_COMMAND, _DEBUG_AFTER_COMMAND, _DEBUG_AFTER_ACTION)
        ),
    )


def _configure_logging(debug: int, command: Command) -> None:
    from wazuh_integrator.logsetup import configure_logging

    configure_logging(debug)
    if debug == 0 and not command.info_logs:
        # Such commands speak through their output; only problems belong on stderr.
        logging.getLogger("wazuh_integrator").setLevel(logging.WARNING)


def _fail(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status."""
    commands = load_commands()
    parser = build_parser(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Command | None = getattr(args, "command_object", None)
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    options = _global_options(args)
    _configure_logging(options.debug, command)
    try:
        return command.run(args, options)
    except ConfigError as exc:
        for issue in exc.issues:
            _fail(str(issue))
        return 1
    except IntegratorError as exc:
        _fail(f"error: {redact_urls_in(str(exc))}")
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``); silence the flush at exit too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        _fail(f"error:{where}: {exc.strerror or exc}")
        return 1
    except Exception as exc:
        log.debug("Unexpected error in '%s'", command.name, exc_info=True)
        hint = "" if options.debug else " (run with -d for details)"
        _fail(f"internal error: {type(exc).__name__}: {redact_urls_in(str(exc))}{hint}")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
