"""``wazuh-integrator dead-letter``: list, show, replay or purge what could not be delivered."""

from __future__ import annotations

import argparse

from wazuh_integrator.commands import Command, GlobalOptions


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "show", "replay", "purge"))
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead letter ids")
    parser.add_argument(
        "--integration",
        metavar="NAME",
        help="only this integration (a name like slack, or slack#0)",
    )
    parser.add_argument("--all", action="store_true", help="replay or purge every dead letter")
    parser.add_argument("--json", action="store_true", help="list: one JSON object per line")
    parser.add_argument(
        "--limit", type=int, default=50, help="list: the newest N (0: all; default 50)"
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.config.settings import load_settings
    from wazuh_integrator.deadletters import dead_letter_command

    paths = options.paths
    settings = load_settings(paths.settings)
    database = settings.state_database(paths.home)
    return dead_letter_command(
        args.action,
        database,
        ids=args.ids,
        integration=args.integration,
        everything=args.all,
        as_json=args.json,
        limit=args.limit,
    )


COMMAND = Command(
    name="dead-letter",
    help="list, show, replay or purge deliveries that were given up",
    add_arguments=_add_arguments,
    run=_run,
)
