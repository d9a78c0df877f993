"""[integrations.*.filter]: each filter, and the reason it gives."""

from __future__ import annotations

from typing import Any

import pytest
from tests.floods.alerts import alert

from wazuh_integrator.config.models import FilterSettings, WhereCondition
from wazuh_integrator.floods.narrowing import Narrowing

WEB = alert(1, data={"srcip": "10.1.2.3", "srcuser": "root"})


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (FilterSettings(exclude_rule_ids=("5712",)), "rule.id 5712 in exclude_rule_ids"),
        (FilterSettings(exclude_rule_ids=("5710",)), None),
        (FilterSettings(exclude_groups=("sshd",)), "group 'sshd' in exclude_groups"),
        (FilterSettings(agents=("002", "db01")), "agent '001' (web01) not in agents [002, db01]"),
        (FilterSettings(agents=("web01",)), None),
        (FilterSettings(agents=("001",)), None),
        (FilterSettings(exclude_agents=("web01",)), "agent.name 'web01' in exclude_agents"),
        (FilterSettings(exclude_agents=("001",)), "agent.id '001' in exclude_agents"),
        (FilterSettings(min_level=12), "level 10 < min_level 12"),
        (FilterSettings(max_level=9), "level 10 > max_level 9"),
        (FilterSettings(min_level=10, max_level=10), None),
    ],
)
def test_each_filter(settings: FilterSettings, reason: str | None) -> None:
    expected = None if reason is None else f"excluded: {reason}"
    assert Narrowing(settings).reason(WEB) == expected


def where(**condition: Any) -> FilterSettings:
    return FilterSettings(where=(WhereCondition(**condition),))


# One case a line, however long, to read as a table.
# ruff: noqa: E501
@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (where(field="data.srcuser", equals="root"), None),
        (where(field="data.srcuser", equals="admin"), "where data.srcuser equals 'admin': it is 'root'"),
        (where(field="data.srcuser", any_of=("admin", "root")), None),
        (where(field="data.srcuser", any_of=("admin",)), "where data.srcuser in [admin]: it is 'root'"),
        (where(field="rule.description", regex="brute"), None),
        (where(field="rule.description", regex="^x"), "where rule.description matches /^x/: it is 'sshd: brute force 1'"),
        (where(field="data.srcip", cidr=("10.0.0.0/8",)), None),
        (where(field="data.srcip", cidr=("10.0.0.0/8",), negate=True), "where data.srcip not in 10.0.0.0/8: it is '10.1.2.3'"),
        (where(field="data.srcip", cidr=("192.168.0.0/16", "fd00::/8")), "where data.srcip in 192.168.0.0/16 or fd00::/8: it is '10.1.2.3'"),
        (where(field="data.dstip", cidr=("10.0.0.0/8",)), "where data.dstip in 10.0.0.0/8: it is missing"),
        (where(field="data.srcip", exists=True), None),
        (where(field="syscheck.path", exists=True), "where syscheck.path exists: it is missing"),
        (where(field="syscheck.path", exists=False), None),
        (where(field="rule.level", any_of=(10, 12)), None),
    ],
)  # fmt: skip
def test_where_conditions(settings: FilterSettings, reason: str | None) -> None:
    expected = None if reason is None else f"excluded: {reason}"
    assert Narrowing(settings).reason(WEB) == expected


def test_a_value_that_is_not_an_address_is_outside_every_network() -> None:
    narrowing = Narrowing(where(field="data.srcip", cidr=("0.0.0.0/0",)))
    assert narrowing.reason(alert(0, data={"srcip": "not-an-ip"})) is not None
    assert narrowing.reason(alert(0, data={"srcip": "::1"})) is not None
    assert narrowing.reason(alert(0, data={"srcip": "8.8.8.8"})) is None
