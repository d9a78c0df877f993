"""Subcommands of ``wazuh-integrator``, one module each, found through a table.

To add a command, write a module here that defines ``COMMAND`` (a
:class:`Command`) and add its module name to :data:`COMMAND_MODULES`.
Keep a command module's top-level imports light: every command is imported
to build ``--help``; import what ``run`` needs inside it.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wazuh_integrator.config.models import WazuhPaths

__all__ = ["COMMAND_MODULES", "Command", "GlobalOptions", "load_commands"]

# Module names under wazuh_integrator.commands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "replay",
    "check_config",
    "test_alerts",
    "status",
    "dead_letter",
    "demo",
    "bundle",
)


@dataclass(frozen=True)
class GlobalOptions:
    """The options every command shares: where the Wazuh tree is, and -d."""

    home: Path
    config: Path | None = None
    settings: Path | None = None
    debug: int = 0

    @property
    def paths(self) -> WazuhPaths:
        return WazuhPaths.from_home(self.home, config=self.config, settings=self.settings)

    def shown(self, path: Path) -> str:
        """How ``path`` appears in messages: relative to the home when inside it."""
        return self.paths.shown(path)


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one line of help, its options and its body.

    ``run`` returns the exit status. It may raise ConfigError or any
    IntegratorError: the command line turns those into one line each on stderr.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, GlobalOptions], int]
    description: str | None = None
    info_logs: bool = False  # True for the daemon: its INFO lines are its output


def load_commands() -> list[Command]:
    commands = []
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        command = module.COMMAND
        if not isinstance(command, Command):
            raise TypeError(f"{module.__name__}.COMMAND is not a Command")
        commands.append(command)
    return commands
