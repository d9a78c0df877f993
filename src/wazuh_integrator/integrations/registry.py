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
from importlib.metadata import entry_points

from wazuh_integrator.errors import IntegratorError
from wazuh_integrator.integrations.base import Integration

ENTRY_POINT_GROUP = "wazuh_integrator.integrations"

BUILTINS: dict[str, str] = {
    "slack": "wazuh_integrator.integrations.slack:SlackIntegration",
    "pagerduty": "wazuh_integrator.integrations.pagerduty:PagerDutyIntegration",
    "shuffle": "wazuh_integrator.integrations.shuffle:ShuffleIntegration",
    "virustotal": "wazuh_integrator.integrations.virustotal:VirusTotalIntegration",
    "maltiverse": "wazuh_integrator.integrations.maltiverse:MaltiverseIntegration",
}
SCRIPT_CLASS = "wazuh_integrator.integrations.script:ScriptIntegration"
CUSTOM_PREFIX = "custom-"


class PluginError(IntegratorError):
    """A plugin that cannot be imported or is not an Integration."""


def _load(target: str) -> type[Integration]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot load integration {target!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Integration)):
        raise PluginError(f"{target!r} is not a subclass of Integration")
    return cls


class Registry:
    """Resolves a block's ``<name>`` to the class that implements it."""

    def __init__(self, plugins: tuple[str, ...] = (), *, entry_point_plugins: bool = True) -> None:
        self._plugins: dict[str, type[Integration]] = {}
        if entry_point_plugins:
            for entry in entry_points(group=ENTRY_POINT_GROUP):
                self._add_plugin(_load(entry.value))
        for target in plugins:
            self._add_plugin(_load(target))

    def _add_plugin(self, cls: type[Integration]) -> None:
        if not cls.name.startswith(CUSTOM_PREFIX):
            raise PluginError(
                f"plugin integration name {cls.name!r} must start with {CUSTOM_PREFIX!r}"
                " so that Wazuh accepts the <integration> block too"
            )
        self._plugins[cls.name] = cls

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
