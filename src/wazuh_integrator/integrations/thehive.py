"""TheHive 5: an alert per Wazuh alert (``POST {base}/api/v1/alert``), with
its addresses, hashes and URLs as observables."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import orjson

from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.alert_fields import (
    agent_name,
    alert_time,
    dig,
    digest_alerts,
    iso_datetime,
    rule_level,
)
from wazuh_integrator.integrations.base import Alert
from wazuh_integrator.integrations.flood_marks import digest_lines, digest_of, suppressed_of
from wazuh_integrator.integrations.webhook import WebhookIntegration

__all__ = [
    "TheHiveIntegration",
    "alert_endpoint",
    "build_thehive_digest_payload",
    "build_thehive_payload",
    "thehive_observables",
    "thehive_severity",
]

_ALERT_PATH = "/api/v1/alert"
# Options that go into a request header instead of the body.
_ORGANISATION_OPTION = "organisation"
# TheHive answers a second alert with the same type, source and sourceRef with
# 400 (409 in later versions) and "already exists": for a retried delivery
# that is the alert its first attempt created.
_DUPLICATE_STATUSES = frozenset({400, 409})
_DUPLICATE_TEXT = "already exists"

_HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = re.compile(r"[0-9a-fA-F]+")
# Where Wazuh alerts carry indicators: (field, TheHive dataType).
_ADDRESS_FIELDS = ("data.srcip", "data.dstip")
_HASH_FIELDS = (
    "syscheck.md5_after",
    "syscheck.sha1_after",
    "syscheck.sha256_after",
    "data.md5",
    "data.sha1",
    "data.sha256",
)
_URL_FIELDS = ("data.url",)


def thehive_severity(level: int) -> int:
    """1 (low) to 4 (critical), in the same bands as PagerDuty's severity."""
    if level >= 13:
        return 4
    if level >= 10:
        return 3
    if level >= 7:
        return 2
    return 1


def alert_endpoint(base: str) -> str:
    root = base.rstrip("/")
    return root if root.endswith(_ALERT_PATH) else root + _ALERT_PATH


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_hash(value: str) -> bool:
    return len(value) in _HASH_LENGTHS and _HEX.fullmatch(value) is not None


def _candidates(alert: Alert) -> Iterator[tuple[str, str, str]]:
    """(dataType, value, field) for every indicator the alert carries."""
    for field in _ADDRESS_FIELDS:
        value = dig(alert, field)
        if isinstance(value, str) and _is_address(value.strip()):
            yield "ip", value.strip(), field
    for field in _HASH_FIELDS:
        value = dig(alert, field)
        if isinstance(value, str) and _is_hash(value.strip()):
            yield "hash", value.strip().lower(), field
    for field in _URL_FIELDS:
        value = dig(alert, field)
        if isinstance(value, str) and value.strip():
            yield "url", value.strip(), field


def thehive_observables(alert: Alert) -> list[dict[str, Any]]:
    """One observable per distinct indicator, tagged with the fields it came from.

    TheHive refuses an alert holding the same observable twice, so an address
    that is both source and destination is one observable with two tags.
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for data_type, value, field in _candidates(alert):
        observable = found.get((data_type, value))
        if observable is None:
            observable = {"dataType": data_type, "data": value, "message": field, "tags": []}
            found[(data_type, value)] = observable
        else:
            observable["message"] += f", {field}"
        observable["tags"].append(f"wazuh:{field}")
    return list(found.values())


def _source_ref(alert: Alert) -> str:
    """Unique per alert and the same on every retry, which lets TheHive refuse
    a duplicate. Alert ids restart on each manager, so the manager is part of it."""
    alert_id = alert.get("id")
    if alert_id is None:
        # A hand-written alert without an id: its content names it.
        digest = hashlib.sha256(orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"sha256:{digest[:32]}"
    manager = dig(alert, "manager.name")
    return f"{manager}:{alert_id}" if manager else str(alert_id)


def _description(alert: Alert, rule: Mapping[str, Any], level: int) -> str:
    """Markdown, which TheHive renders."""
    rows = [
        ("Rule", f"{rule.get('id')} (level {level})"),
        ("Agent", f"({dig(alert, 'agent.id') or '-'}) {agent_name(alert) or '-'}"),
        ("Location", alert.get("location")),
        ("Groups", ", ".join(str(group) for group in rule.get("groups") or ())),
        ("Alert ID", alert.get("id")),
        ("Time", alert.get("timestamp")),
    ]
    suppressed = suppressed_of(alert)
    if suppressed is not None:
        rows.append(("Suppressed", suppressed.text()))
    lines = [f"**{rule.get('description', 'N/A')}**", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows if value]
    if alert.get("full_log"):
        lines += ["", "```", str(alert["full_log"]).replace("```", "'''"), "```"]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def build_thehive_payload(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The create-alert body for ``alert``.

    ``options`` are merged at the top level (``tlp``, ``pap``, ``tags``,
    ``caseTemplate``, ``type``, ``source``, ...), except ``organisation``,
    which is sent as the ``X-Organisation`` header.
    """
    rule: Mapping[str, Any] = alert.get("rule") or {}
    level = rule_level(alert)
    body: dict[str, Any] = {
        "type": "wazuh",
        "source": "Wazuh",
        "sourceRef": _source_ref(alert),
        "title": str(rule.get("description", "N/A")),
        "description": _description(alert, rule, level),
        "severity": thehive_severity(level),
    }
    when = alert_time(alert)
    if when is not None:
        body["date"] = int(when.timestamp() * 1000)
    tags = ["wazuh", f"wazuh:rule={rule.get('id')}"]
    tags += [str(group) for group in rule.get("groups") or () if str(group) not in tags]
    agent = agent_name(alert)
    if agent:
        tags.append(f"wazuh:agent={agent}")
    body["tags"] = tags
    body["observables"] = thehive_observables(alert)
    if options:
        body.update({k: v for k, v in options.items() if k != _ORGANISATION_OPTION})
    return body


def _merged_observables(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The observables of every listed alert, each indicator once."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for alert in alerts:
        for observable in thehive_observables(alert):
            key = (observable["dataType"], observable["data"])
            known = merged.setdefault(key, {**observable, "tags": []})
            known["tags"] += [tag for tag in observable["tags"] if tag not in known["tags"]]
            if observable["message"] not in known["message"].split(", "):
                known["message"] += f", {observable['message']}"
    return list(merged.values())


def build_thehive_digest_payload(
    document: Alert, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One TheHive alert for a floods digest, with the observables of the
    alerts it lists. Its ``sourceRef`` names this digest (each digest of a
    group is an alert of its own, the same on every retry of it)."""
    header = digest_of(document) or {}
    alerts = digest_alerts(document)
    group = str(header.get("group", "?"))
    count = document.get("count", len(alerts))
    name = f"{header.get('integration')}\0{group}\0{document.get('first')}"
    lines = [
        f"**{count} Wazuh alerts for {_cell(group)}**",
        "",
        f"From {document.get('first')} to {document.get('last')}",
        "",
        *(f"- {_cell(line)}" for line in digest_lines(document)),
    ]
    body: dict[str, Any] = {
        "type": "wazuh",
        "source": "Wazuh",
        "sourceRef": f"digest:{hashlib.sha256(name.encode()).hexdigest()[:32]}",
        "title": f"{count} Wazuh alerts for {group}",
        "description": "\n".join(lines),
        "severity": thehive_severity(max((rule_level(a) for a in alerts), default=0)),
    }
    when = iso_datetime(document.get("last"))
    if when is not None:
        body["date"] = int(when.timestamp() * 1000)
    body["tags"] = ["wazuh", "wazuh:digest", f"wazuh:group={group}"]
    body["observables"] = _merged_observables(alerts)
    if options:
        body.update({k: v for k, v in options.items() if k != _ORGANISATION_OPTION})
    return body


def _body(alert: Alert, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if digest_of(alert) is not None:
        return build_thehive_digest_payload(alert, options)
    return build_thehive_payload(alert, options)


class TheHiveIntegration(WebhookIntegration):
    """Says what TheHive gets; the webhook base sends it."""

    name = "thehive"
    required: ClassVar[tuple[str, ...]] = ("hook_url", "api_key")

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        organisation = (block.options or {}).get(_ORGANISATION_OPTION)
        if organisation is not None and not (isinstance(organisation, str) and organisation):
            return f'options: "{_ORGANISATION_OPTION}" must be a non-empty string'
        return None

    def preview(self, alert: Alert) -> dict[str, Any]:
        return _body(alert, self.block.options)

    def target_url(self) -> str:
        return alert_endpoint(super().target_url())

    def auth_header(self) -> str | None:
        if self.block.api_key is None:
            raise Permanent("thehive: no <api_key> configured")
        return f"Bearer {self.block.api_key.reveal()}"

    def extra_headers(self) -> Mapping[str, str]:
        organisation = (self.block.options or {}).get(_ORGANISATION_OPTION)
        return {"X-Organisation": str(organisation)} if organisation else {}

    async def send(self, alert: Alert) -> None:
        try:
            await super().send(alert)
        except Permanent as error:
            if error.status in _DUPLICATE_STATUSES and _DUPLICATE_TEXT in str(error):
                return  # created by an earlier attempt of this delivery
            raise
