"""``wazuh-integrator dead-letter``: list, show, replay or purge what could not be delivered."""

from __future__ import annotations

import argparse
import logging

from wazuh_integrator.commands import Command, GlobalOptions

log = logging.getLogger(__name__)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _letter_id(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"dead letter ids start at 1, not {value}")
    return value


def _add_integration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--integration",
        metavar="NAME",
        help="only this integration (a name like slack, or a block like slack#0)",
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from wazuh_integrator.cli import add_global_options

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list",
        help="the newest dead letters, one a line",
        description="List dead letters, newest last: id, integration, alert id, tries, error.",
    )
    _add_integration(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--limit", type=_count, default=50, metavar="N", help="the newest N (0: all; default 50)"
    )

    show = actions.add_parser(
        "show",
        help="one dead letter with its alert",
        description="Print one dead letter as JSON, with the alert it carries.",
    )
    show.add_argument("ids", nargs=1, type=_letter_id, metavar="ID", help="a dead letter id")

    for name, summary, description, outcome in (
        (
            "replay",
            "send dead letters again",
            "Move dead letters back to the parked table, due now: the running daemon"
            " (or the next `run`) delivers them through the normal path.",
            "queued for delivery",
        ),
        ("purge", "delete dead letters", "Delete dead letters for good.", "deleted"),
    ):
        action = actions.add_parser(name, help=summary, description=description)
        action.add_argument("ids", nargs="*", type=_letter_id, metavar="ID", help="dead letter ids")
        _add_integration(action)
        action.add_argument("--all", action="store_true", help=f"{name} every dead letter")
        action.add_argument(
            "--dry-run", action="store_true", help=f"say which dead letters would be {outcome}"
        )
    for action_parser in actions.choices.values():
        # So that `dead-letter list --home DIR` works as `dead-letter --home DIR list` does.
        add_global_options(action_parser)


def _known_integrations(options: GlobalOptions) -> frozenset[str]:
    """Names and block keys of ossec.conf, read leniently: a broken file
    still lets the dead letters be listed."""
    from wazuh_integrator.config.ossec import read_ossec_conf

    config = read_ossec_conf(options.paths.config)
    return frozenset(
        {block.name for block in config.blocks} | {block.key for block in config.blocks}
    )


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.config.settings import load_settings
    from wazuh_integrator.deadletters import dead_letter_command

    paths = options.paths
    settings = load_settings(paths.settings)
    if settings.cluster is not None:
        from wazuh_integrator.cluster.deadletters import cluster_dead_letter_command
        from wazuh_integrator.deadletters import Selection

        return cluster_dead_letter_command(
            args.action,
            settings.cluster,
            Selection(
                tuple(args.ids if "ids" in args else ()),
                getattr(args, "integration", None),
                getattr(args, "all", False),
            ),
            as_json=getattr(args, "json", False),
            limit=getattr(args, "limit", 50),
            dry_run=getattr(args, "dry_run", False),
            known_integrations=_known_integrations(options),
        )
    database = settings.state_database(paths.home)
    log.debug("Dead letters: reading the state database %s", database)
    return dead_letter_command(
        args.action,
        database,
        ids=args.ids if "ids" in args else (),
        integration=getattr(args, "integration", None),
        everything=getattr(args, "all", False),
        as_json=getattr(args, "json", False),
        limit=getattr(args, "limit", 50),
        dry_run=getattr(args, "dry_run", False),
        known_integrations=_known_integrations(options),
    )


COMMAND = Command(
    name="dead-letter",
    help="list, show, replay or purge deliveries that were given up",
    add_arguments=_add_arguments,
    run=_run,
)
