"""Names to integration classes: the one place the config reader, the daemon,
``test`` and the docs look integrations up.

Built-ins are imported lazily so that ``check-config`` stays quick. User
integrations written in Python register under a ``custom-`` name, either via
the ``wazuh_integrator.integrations`` entry-point group or a ``module:Class``
listed under ``plugins`` in integrator.toml; a registered ``custom-`` name
runs in-process instead of looking for a script.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points

from wazuh_integrator.errors import IntegratorError
from wazuh_integrator.integrations.base import Integration

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "wazuh_integrator.integrations"

BUILTINS: dict[str, str] = {
    "slack": "wazuh_integrator.integrations.slack:SlackIntegration",
    "pagerduty": "wazuh_integrator.integrations.pagerduty:PagerDutyIntegration",
    "shuffle": "wazuh_integrator.integrations.shuffle:ShuffleIntegration",
    "virustotal": "wazuh_integrator.integrations.virustotal:VirusTotalIntegration",
    "maltiverse": "wazuh_integrator.integrations.maltiverse:MaltiverseIntegration",
    "webhook": "wazuh_integrator.integrations.generic_webhook:GenericWebhookIntegration",
    "teams": "wazuh_integrator.integrations.teams:TeamsIntegration",
    "telegram": "wazuh_integrator.integrations.telegram:TelegramIntegration",
    "discord": "wazuh_integrator.integrations.discord:DiscordIntegration",
    "jira": "wazuh_integrator.integrations.jira:JiraIntegration",
    "email": "wazuh_integrator.integrations.email:EmailIntegration",
    "syslog": "wazuh_integrator.integrations.syslog:SyslogIntegration",
    "opsgenie": "wazuh_integrator.integrations.opsgenie:OpsgenieIntegration",
    "thehive": "wazuh_integrator.integrations.thehive:TheHiveIntegration",
}
SCRIPT_CLASS = "wazuh_integrator.integrations.script:ScriptIntegration"
CUSTOM_PREFIX = "custom-"


class PluginError(IntegratorError):
    """A plugin that cannot be imported or is not an Integration."""


def _load(target: str) -> type[Integration]:
    """Import ``module:Class`` (``Class`` may be dotted) and check it is an Integration."""
    module_name, colon, attribute = (part.strip() for part in target.partition(":"))
    if not (colon and module_name and attribute):
        raise PluginError(f"cannot load integration {target!r}: expected 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a plugin's import may fail in any way; name it, do not crash
        raise PluginError(
            f"cannot load integration {target!r}: importing {module_name!r} failed:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise PluginError(
                f"cannot load integration {target!r}: module {module_name!r}"
                f" has no attribute {attribute!r}"
            ) from None
    if not (isinstance(found, type) and issubclass(found, Integration)):
        raise PluginError(f"{target!r} is not a subclass of Integration")
    if inspect.isabstract(found):
        missing = ", ".join(sorted(getattr(found, "__abstractmethods__", ())))
        raise PluginError(f"{target!r} does not implement {missing}")
    return found


class Registry:
    """Resolves a block's ``<name>`` to the class that implements it."""

    def __init__(self, plugins: tuple[str, ...] = (), *, entry_point_plugins: bool = True) -> None:
        self._plugins: dict[str, type[Integration]] = {}
        if entry_point_plugins:
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                cls = _load(entry.value)
                if entry.name != getattr(cls, "name", None):
                    raise PluginError(
                        f"entry point {entry.name!r} in group {ENTRY_POINT_GROUP!r} loads"
                        f" {entry.value!r}, whose name is {getattr(cls, 'name', None)!r}:"
                        " the two must be the same"
                    )
                self._add_plugin(cls, entry.value)
        for target in plugins:
            self._add_plugin(_load(target), target)

    def _add_plugin(self, cls: type[Integration], target: str) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name.startswith(CUSTOM_PREFIX) or name == CUSTOM_PREFIX:
            raise PluginError(
                f"plugin {target!r} has the integration name {name!r}: it must start with"
                f" {CUSTOM_PREFIX!r} so that Wazuh accepts the <integration> block too"
            )
        known = self._plugins.get(name)
        if known is not None and known is not cls:
            raise PluginError(
                f"plugin {target!r} claims the name {name!r}, already taken by"
                f" {known.__module__}:{known.__qualname__}"
            )
        if callable(getattr(cls, "options_problem", None)):
            # The check's earlier name: a plugin written for it would run
            # blocks its author meant to refuse, without a word.
            log.warning(
                "Plugin %r defines options_problem(), which is no longer called: its"
                " checks do not run. Rename it to the classmethod block_problem(block).",
                target,
            )
        self._plugins[name] = cls

    @staticmethod
    def is_supported_name(name: str) -> bool:
        return name in BUILTINS or name.startswith(CUSTOM_PREFIX)

    def resolve(self, name: str) -> type[Integration] | None:
        """The class for ``name``, or None when the name is not supported."""
        if name in self._plugins:
            return self._plugins[name]
        if name in BUILTINS:
            return _load(BUILTINS[name])
        if name.startswith(CUSTOM_PREFIX):
            return _load(SCRIPT_CLASS)
        return None

    def names(self) -> list[str]:
        return sorted({*BUILTINS, *self._plugins})
