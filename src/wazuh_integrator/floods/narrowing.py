"""``[integrations.<name>.filter]``: filters that only narrow a block's stock
ones, compiled once; :meth:`Narrowing.reason` says which one excluded an alert."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

from wazuh_integrator.config.models import FilterSettings, WhereCondition
from wazuh_integrator.floods.fields import MISSING, FieldPath, shown

__all__ = ["Narrowing"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _quoted(value: Any) -> str:
    return f"'{shown(value)}'"


def _listed(items: tuple[Any, ...]) -> str:
    return "[" + ", ".join(shown(item) for item in items) + "]"


def _level(alert: Mapping[str, Any]) -> int | None:
    rule = alert.get("rule")
    level = rule.get("level") if isinstance(rule, Mapping) else None
    if isinstance(level, bool) or not isinstance(level, int | float):
        return None
    return int(level)


def _mapping(alert: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = alert.get(name)
    return value if isinstance(value, Mapping) else {}


class _Condition:
    """One ``where`` condition: ``test(value)`` says whether it holds."""

    def __init__(self, condition: WhereCondition) -> None:
        self.path = FieldPath(condition.field)
        self.negate = condition.negate
        self.test: Callable[[Any], bool]
        self.words: str
        if condition.exists is not None:
            wanted = condition.exists
            self.test = lambda value: (value is not MISSING) == wanted
            self.words = "exists" if wanted else "is absent"
        elif condition.any_of is not None:
            choices = condition.any_of
            self.test = lambda value: value in choices
            self.words = f"in {_listed(choices)}"
        elif condition.regex is not None:
            pattern = re.compile(condition.regex)
            self.test = lambda value: (
                value is not MISSING
                and bool(pattern.search(value if isinstance(value, str) else shown(value)))
            )
            self.words = f"matches /{condition.regex}/"
        elif condition.cidr is not None:
            networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in condition.cidr)
            self.test = lambda value: _in_networks(value, networks)
            self.words = f"in {' or '.join(condition.cidr)}"
        else:
            expected = condition.equals
            self.test = lambda value: value == expected
            self.words = f"equals {_quoted(expected)}"

    def reason(self, alert: Mapping[str, Any]) -> str | None:
        value = self.path.read(alert)
        if self.test(value) != self.negate:
            return None
        wanted = f"not {self.words}" if self.negate else self.words
        found = "missing" if value is MISSING else _quoted(value)
        return f"where {self.path.dotted} {wanted}: it is {found}"


def _in_networks(value: Any, networks: tuple[_Network, ...]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return any(address in network for network in networks)


class Narrowing:
    """A block's richer filters; every check reads the fully decoded alert."""

    def __init__(self, settings: FilterSettings) -> None:
        self._settings = settings
        self._excluded_rules = frozenset(settings.exclude_rule_ids)
        self._excluded_groups = frozenset(settings.exclude_groups)
        self._agents = frozenset(settings.agents)
        self._excluded_agents = frozenset(settings.exclude_agents)
        self._where = tuple(_Condition(condition) for condition in settings.where)

    def reason(self, alert: Mapping[str, Any]) -> str | None:
        """Why ``alert`` is excluded (``excluded: ...``), or None when it passes."""
        why = self._why(alert)
        return None if why is None else f"excluded: {why}"

    def _why(self, alert: Mapping[str, Any]) -> str | None:
        settings = self._settings
        rule = _mapping(alert, "rule")
        if self._excluded_rules:
            rule_id = rule.get("id")
            if rule_id is not None and str(rule_id).lstrip("0") in self._excluded_rules:
                return f"rule.id {rule_id} in exclude_rule_ids"
        if self._excluded_groups:
            groups = rule.get("groups")
            for group in groups if isinstance(groups, list) else ():
                if group in self._excluded_groups:
                    return f"group {_quoted(group)} in exclude_groups"
        agent = _mapping(alert, "agent")
        agent_id, agent_name = agent.get("id"), agent.get("name")
        if self._agents and agent_id not in self._agents and agent_name not in self._agents:
            return (
                f"agent {_quoted(agent_id if agent_id is not None else MISSING)}"
                f" ({shown(agent_name if agent_name is not None else MISSING)})"
                f" not in agents {_listed(settings.agents)}"
            )
        if self._excluded_agents:
            if agent_id in self._excluded_agents:
                return f"agent.id {_quoted(agent_id)} in exclude_agents"
            if agent_name in self._excluded_agents:
                return f"agent.name {_quoted(agent_name)} in exclude_agents"
        if settings.min_level is not None or settings.max_level is not None:
            level = _level(alert)
            if level is None:
                return "alert has no rule.level"
            if settings.min_level is not None and level < settings.min_level:
                return f"level {level} < min_level {settings.min_level}"
            if settings.max_level is not None and level > settings.max_level:
                return f"level {level} > max_level {settings.max_level}"
        for condition in self._where:
            why = condition.reason(alert)
            if why is not None:
                return why
        return None
