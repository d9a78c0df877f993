"""Digests: grouping, timing, listing and counting, and their state in the store."""

from __future__ import annotations

from pathlib import Path

from tests.floods.alerts import alert

from wazuh_integrator.config.models import DigestSettings
from wazuh_integrator.floods.digest import DigestCollector
from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.integrations.flood_marks import digest_lines, digest_of
from wazuh_integrator.store import StateStore

SETTINGS = DigestSettings(
    group_by=("rule.id",), group_wait_s=30.0, group_interval_s=300.0, max_alerts=10
)


def test_500_alerts_in_a_second_make_one_digest_listing_max_alerts_counting_all() -> None:
    collector = DigestCollector(SETTINGS)
    for n in range(500):
        assert collector.collect(alert(n), b"", now=1000.0 + n / 500) == "rule.id=5712"
    assert collector.take_due(1029.0) == []
    (ready,) = collector.take_due(1030.0)
    document = ready.document
    assert document["count"] == 500
    assert len(document["alerts"]) == 10
    assert [a["id"] for a in document["alerts"]] == [f"1764262800.{n}" for n in range(10)]
    assert digest_of(document) == {
        "group": "rule.id=5712",
        "fields": {"rule.id": "5712"},
        "integration": "",
    }
    assert digest_lines(document)[-1] == "and 490 more"
    assert collector.take_due(5000.0) == []


def test_a_busy_group_sends_once_per_interval() -> None:
    collector = DigestCollector(SETTINGS)
    sent_at = []
    for second in range(0, 1200):  # one alert a second for 20 minutes
        collector.collect(alert(second), b"", now=float(second))
        for ready in collector.take_due(float(second)):
            sent_at.append((second, ready.document["count"]))
    assert [at for at, _ in sent_at] == [30, 330, 630, 930]
    assert [count for _, count in sent_at] == [31, 300, 300, 300]


def test_groups_are_apart() -> None:
    collector = DigestCollector(
        DigestSettings(group_by=("rule.id", "agent.id"), group_wait_s=0.0, max_alerts=5)
    )
    collector.collect(alert(0, agent_id="001"), b"", now=0.0)
    collector.collect(alert(1, agent_id="002"), b"", now=0.0)
    collector.collect(alert(2, rule_id="5710"), b"", now=0.0)
    groups = sorted(ready.group_key for ready in collector.take_due(0.0))
    assert groups == [
        "rule.id=5710 agent.id=001",
        "rule.id=5712 agent.id=001",
        "rule.id=5712 agent.id=002",
    ]


def test_collected_alerts_survive_a_crash_before_the_digest(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        first = DigestCollector(SETTINGS, integration_key="slack#0", store=store)
        for n in range(50):
            first.collect(alert(n), f'{{"n":{n}}}'.encode(), now=100.0, mark=Mark(1, 2, n))
    with StateStore(tmp_path / "state.db") as store:
        second = DigestCollector(SETTINGS, integration_key="slack#0", store=store)
        # Lines read again after the crash are not counted twice.
        for n in range(45, 50):
            second.collect(alert(n), b"{}", now=101.0, mark=Mark(1, 2, n))
        second.collect(alert(50), b'{"n":50}', now=101.0, mark=Mark(1, 2, 50))
        assert second.pending() == {"rule.id=5712": 51}
        (ready,) = second.take_due(130.0)
    assert ready.document["count"] == 51
    assert [a["n"] for a in ready.document["alerts"]] == list(range(10))


def test_a_digest_sent_but_not_settled_is_sent_again_at_start(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        first = DigestCollector(SETTINGS, integration_key="slack#0", store=store)
        first.collect(alert(0), b'{"n":0}', now=100.0, mark=Mark(1, 2, 0))
        (sent,) = first.take_due(130.0)
    with StateStore(tmp_path / "state.db") as store:
        second = DigestCollector(SETTINGS, integration_key="slack#0", store=store)
        assert second.next_due_at() == float("-inf")
        (again,) = second.take_due(131.0)
        assert again.batch_id == sent.batch_id and again.document["count"] == 1
        second.settled(again.batch_id)
    with StateStore(tmp_path / "state.db") as store:
        third = DigestCollector(SETTINGS, integration_key="slack#0", store=store)
        assert third.take_due(135.0) == []
        # The group remembers its last digest: the next one waits for the interval.
        third.collect(alert(1), b"{}", now=140.0, mark=Mark(1, 2, 1))
        assert third.next_due_at() == 430.0
