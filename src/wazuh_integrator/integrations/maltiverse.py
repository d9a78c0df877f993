"""Maltiverse: look up an alert's hashes, source address, hostname and URL; tell
analysisd about each one Maltiverse knows, as an ECS ``threat.indicator``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from wazuh_integrator.analysisd import EventTooLarge
from wazuh_integrator.config.models import IntegrationBlock
from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.integrations.http import get_json
from wazuh_integrator.integrations.indicators import (
    alert_field,
    is_md5,
    is_public_ip,
    is_sha1,
    url_sha256,
)
from wazuh_integrator.integrations.lookups import CachedLookups

__all__ = [
    "Indicator",
    "MaltiverseIntegration",
    "build_maltiverse_event",
    "indicators_of",
]

logger = logging.getLogger(__name__)

INTEGRATION = "maltiverse"
CACHE_NAMESPACE = "maltiverse"
REFERENCE_URL = "https://maltiverse.com/"

# kind → the path under hook_url that Maltiverse answers it on
_API_PATHS = {
    "md5": "sample/md5",
    "sha1": "sample/sha1",
    "ip": "ip",
    "hostname": "hostname",
    "url": "url",
}

# Maltiverse's answer ``type`` → ECS threat.indicator.type
_ECS_TYPES = {
    "ip": "ipv4-addr",
    "hostname": "domain-name",
    "sample": "file",
    "url": "url",
}

# classification → confidence with more than one sighting, and with one or none
_CONFIDENCE = {
    "malicious": ("High", "Medium"),
    "suspicious": ("Medium", "Low"),
    "neutral": ("Low", "None"),
    "whitelist": ("Low", "None"),
}

_MITRE_SOURCE = "mitre-attack"
_MITRE_SOFTWARE_PREFIX = "S"


@dataclass(frozen=True)
class Indicator:
    """One thing of an alert worth asking Maltiverse about.

    ``name`` is the value as found in the alert; ``key`` is what Maltiverse
    files it under (the same, except for URLs, filed by their SHA-256).
    """

    kind: str
    name: str
    key: str

    @property
    def path(self) -> str:
        # ':' stays as is, as stock sends IPv6 addresses; '/', '?' and '#' would change the request.
        return f"{_API_PATHS[self.kind]}/{quote(self.key, safe=':')}"

    @property
    def cache_key(self) -> str:
        key = self.key.lower() if self.kind in ("md5", "sha1") else self.key
        return f"{self.kind}:{key}"


MAX_INDICATORS_PER_ALERT = 5  # md5, sha1, srcip, hostname, url


def indicators_of(alert: Alert) -> list[Indicator]:
    """The alert's indicators, in the order their events are sent."""
    found: list[Indicator] = []
    md5 = alert_field(alert, "syscheck", "md5_after")
    if is_md5(md5):
        found.append(Indicator("md5", md5, md5))
    sha1 = alert_field(alert, "syscheck", "sha1_after")
    if is_sha1(sha1):
        found.append(Indicator("sha1", sha1, sha1))
    srcip = alert_field(alert, "data", "srcip")
    if is_public_ip(srcip):
        found.append(Indicator("ip", srcip, srcip))
    hostname = alert_field(alert, "data", "hostname")
    if isinstance(hostname, str) and hostname:
        found.append(Indicator("hostname", hostname, hostname))
    url = alert_field(alert, "data", "url")
    if isinstance(url, str) and url:
        found.append(Indicator("url", url, url_sha256(url)))
    return found


def _joined_distinct(entries: list[dict[str, Any]], field: str) -> str:
    # An empty string is a value like any other (stock's join keeps it, as a
    # leading ", "); only entries without a text value are left out.
    values = {entry.get(field) for entry in entries}
    return ", ".join(sorted(value for value in values if isinstance(value, str)))


def _confidence(classification: Any, sightings: int) -> str:
    if not classification:
        return "Not Specified"
    several, few = _CONFIDENCE.get(classification, ("None", "None"))
    return several if sightings > 1 else few


def _ecs_type(answer: dict[str, Any]) -> str | None:
    kind = answer.get("type")
    if kind == "ip" and str(answer.get("ip_version")) == "6":
        return "ipv6-addr"
    return _ECS_TYPES.get(kind) if isinstance(kind, str) else None


def _software(blacklist: list[dict[str, Any]]) -> dict[str, Any] | None:
    software = None
    for entry in blacklist:
        references = entry.get("external_references")
        if not isinstance(references, list):
            continue
        for reference in references:
            if not isinstance(reference, dict) or reference.get("source_name") != _MITRE_SOURCE:
                continue
            external_id = reference.get("external_id")
            if isinstance(external_id, str) and external_id.startswith(_MITRE_SOFTWARE_PREFIX):
                software = {
                    "id": external_id,
                    "reference": reference.get("url"),
                    "name": reference.get("description"),
                }
    return software


def build_maltiverse_event(
    alert: Alert, indicator: str, kind: str, answer: dict[str, Any]
) -> dict[str, Any]:
    """The event analysisd receives for one indicator Maltiverse knows.

    ``indicator`` is the value as found in the alert, ``kind`` one of ``md5``,
    ``sha1``, ``ip``, ``hostname``, ``url``; ``answer`` the API's answer as received.
    """
    raw_blacklist = answer.get("blacklist")
    if not isinstance(raw_blacklist, list):
        raw_blacklist = []
    blacklist = [entry for entry in raw_blacklist if isinstance(entry, dict)]
    # Every entry is a sighting, as stock counts them, even one we cannot read.
    sightings = len(raw_blacklist)
    answer_type = answer.get("type")
    reference_name = url_sha256(indicator) if kind == "url" else indicator
    threat_indicator: dict[str, Any] = {
        "name": indicator,
        "type": _ecs_type(answer),
        "description": _joined_distinct(blacklist, "description"),
        "provider": _joined_distinct(blacklist, "source"),
        "first_seen": answer.get("creation_time"),
        "modified_at": answer.get("modification_time"),
        "last_seen": answer.get("modification_time"),
        "confidence": _confidence(answer.get("classification"), sightings),
        "sightings": sightings,
        "reference": f"{REFERENCE_URL}{answer_type}/{reference_name}" if answer_type else "",
    }
    if answer_type == "ip":
        threat_indicator["ip"] = indicator
    threat: dict[str, Any] = {"indicator": threat_indicator}
    software = _software(blacklist)
    if software is not None:
        threat["software"] = software
    return {
        "integration": INTEGRATION,
        "alert_id": alert.get("id"),
        "maltiverse": {"source": answer},
        "threat": threat,
    }


class MaltiverseIntegration(Integration):
    """Enriches alerts with what Maltiverse knows of their indicators."""

    name: ClassVar[str] = INTEGRATION
    required: ClassVar[tuple[str, ...]] = ("hook_url", "api_key")
    sends_to_analysisd: ClassVar[bool] = True

    @property
    def attempt_timeout_s(self) -> float:
        # One alert can need a lookup for each kind of indicator, one after another.
        return float(self.block.timeout_s * MAX_INDICATORS_PER_ALERT)

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self._lookups = CachedLookups(CACHE_NAMESPACE, context)

    def needs_request(self, alert: Alert) -> bool:
        return not all(self._lookups.is_known(i.cache_key) for i in indicators_of(alert))

    def stats(self) -> dict[str, int]:
        return self._lookups.counts()

    def would_skip(self, alert: Alert) -> str | None:
        if indicators_of(alert):
            return None
        return "no indicator to look up (no public data.srcip, MD5, SHA1, hostname or URL)"

    async def send(self, alert: Alert) -> None:
        indicators = indicators_of(alert)
        # Every lookup first, then every event: a lookup that fails and is
        # retried does not repeat events already sent, and the answers already
        # received come back from the cache on the retry.
        known: list[tuple[Indicator, dict[str, Any]]] = []
        for indicator in indicators:
            answer = await self._answer(indicator)
            if answer:
                known.append((indicator, answer))
        if not known:
            return
        sink = self.context.event_sink()
        too_large: EventTooLarge | None = None
        for indicator, answer in known:
            event = build_maltiverse_event(alert, indicator.name, indicator.kind, answer)
            try:
                await sink.send_event(event, alert, INTEGRATION)
            except EventTooLarge as error:
                # One oversized answer must not hold back the alert's other events.
                too_large = error
        if too_large is not None:
            raise too_large

    async def _answer(self, indicator: Indicator) -> dict[str, Any]:
        """Maltiverse's answer for ``indicator``; empty when it knows nothing of it."""
        return await self._lookups.answer(indicator.cache_key, lambda: self._lookup(indicator))

    async def _lookup(self, indicator: Indicator) -> dict[str, Any]:
        if not (self.block.hook_url and self.block.api_key):
            raise Permanent("maltiverse: hook_url and api_key are required")
        base_url = self.block.hook_url.reveal().rstrip("/")
        status, body = await get_json(
            self.context.session(),
            f"{base_url}/{indicator.path}",
            headers={"Authorization": f"Bearer {self.block.api_key.reveal()}"},
            timeout_s=self.block.timeout_s,
            ok_statuses=frozenset({200, 404}),
            secrets=self.block.secrets,
        )
        if status == 404 or body is None:
            return {}
        if not isinstance(body, dict):
            raise Permanent(f"maltiverse: {indicator.kind} answer is not a JSON object")
        return body
