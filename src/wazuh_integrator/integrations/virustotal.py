"""VirusTotal: look up the MD5 of files that syscheck saw change, tell analysisd.

Each lookup answer is reduced to the few fields the event needs, in the shape of
the stock (API v2) answer, whichever API version gave it: that reduced answer
is what the cache keeps and what :func:`build_virustotal_event` reads.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from wazuh_integrator.analysisd import AnalysisdUnavailable, EventTooLarge
from wazuh_integrator.config.models import IntegrationBlock, RateLimit
from wazuh_integrator.errors import DeliveryError, Permanent, RateLimited, Timeout
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.integrations.http import get_json
from wazuh_integrator.integrations.indicators import alert_field, is_single_case_md5
from wazuh_integrator.integrations.lookups import CachedLookups

__all__ = [
    "API_VERSIONS",
    "VirusTotalIntegration",
    "answer_from_v2",
    "answer_from_v3",
    "build_error_event",
    "build_virustotal_event",
]

logger = logging.getLogger(__name__)

API_VERSIONS = ("v2", "v3")
DEFAULT_API_VERSION = "v3"
DEFAULT_BASE_URL = "https://www.virustotal.com"
GUI_FILE_URL = "https://www.virustotal.com/gui/file/"
CACHE_NAMESPACE = "virustotal"
INTEGRATION = "virustotal"

# Stock's texts, which the Wazuh ruleset matches on.
RATE_LIMIT_CODE = 204
RATE_LIMIT_TEXT = "Error: Public API request rate limit reached"
CREDENTIALS_TEXT = "Error: Check credentials"
TIMEOUT_CODE = 408
TIMEOUT_TEXT = "Error: API request timed out"
FAILURE_TEXT = "Error: API request fail"
# v2 answers 403 to a bad key, v3 answers 401.
_CREDENTIAL_STATUSES = {"v2": frozenset({403}), "v3": frozenset({401, 403})}

# What v2 answers, and what we note, for a file VirusTotal does not know.
NOT_FOUND: dict[str, Any] = {"response_code": 0}
_REPORT_FIELDS = ("sha1", "scan_date", "positives", "total", "permalink")
_SCAN_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def answer_from_v2(body: Any) -> dict[str, Any]:
    """The fields of a v2 ``file/report`` answer that the event uses."""
    if not isinstance(body, dict) or not isinstance(body.get("response_code"), int):
        raise Permanent("VirusTotal v2 answer has no response_code")
    answer: dict[str, Any] = {"response_code": body["response_code"]}
    if body["response_code"] != 0:
        answer.update((name, body.get(name)) for name in _REPORT_FIELDS)
    return answer


def answer_from_v3(md5: str, body: Any) -> dict[str, Any]:
    """A v3 ``files/{hash}`` answer, reduced to what the v2 answer would have said."""
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise Permanent("VirusTotal v3 answer has no data.attributes")
    stats = attributes.get("last_analysis_stats")
    counts = (
        {name: count for name, count in stats.items() if isinstance(count, int)}
        if isinstance(stats, dict)
        else {}
    )
    analysed_at = attributes.get("last_analysis_date")
    scan_date = (
        datetime.fromtimestamp(analysed_at, timezone.utc).strftime(_SCAN_DATE_FORMAT)
        if isinstance(analysed_at, int | float)
        else None
    )
    return {
        "response_code": 1,
        "sha1": attributes.get("sha1"),
        "scan_date": scan_date,
        "positives": counts.get("malicious", 0),
        "total": sum(counts.values()),
        "permalink": GUI_FILE_URL + md5.lower(),
    }


def _is_v3_not_found(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == "NotFoundError"


def build_virustotal_event(alert: Alert, answer: dict[str, Any]) -> dict[str, Any]:
    """The event analysisd receives for ``alert``, given the (reduced) lookup answer."""
    found = 0 if answer.get("response_code") == 0 else 1
    positives = answer.get("positives")
    malicious = (
        1
        if found
        and isinstance(positives, int)
        and not isinstance(positives, bool)
        and positives > 0
        else 0
    )
    report: dict[str, Any] = {
        "found": found,
        "malicious": malicious,
        "source": {
            "alert_id": alert.get("id"),
            "file": alert_field(alert, "syscheck", "path"),
            "md5": alert_field(alert, "syscheck", "md5_after"),
            "sha1": alert_field(alert, "syscheck", "sha1_after"),
        },
    }
    if found:
        report.update((name, answer.get(name)) for name in _REPORT_FIELDS)
    return {"virustotal": report, "integration": INTEGRATION}


def build_error_event(
    error: DeliveryError, api_version: str = DEFAULT_API_VERSION
) -> dict[str, Any] | None:
    """The event that tells analysisd a lookup was abandoned, in stock's words.

    None when stock would have sent nothing: a failure without an HTTP answer
    (connection refused, a name that does not resolve) or a 2xx answer we
    could not read. With API v2 the codes are exactly stock's: only 204 is the
    quota and only 403 the credentials, any other status (a proxy's 429 or
    401 included) is ``Error: API request fail``. With v3, whose quota answer
    is 429 and bad-key answer 401, those map to stock's texts.
    """
    status = error.status
    if status == RATE_LIMIT_CODE or (isinstance(error, RateLimited) and api_version != "v2"):
        code, text = RATE_LIMIT_CODE, RATE_LIMIT_TEXT
    elif isinstance(error, Timeout):
        code, text = TIMEOUT_CODE, TIMEOUT_TEXT
    elif status is None or 200 <= status <= 299:
        return None
    elif status in _CREDENTIAL_STATUSES[api_version]:
        code, text = status, CREDENTIALS_TEXT
    else:
        code, text = status, FAILURE_TEXT
    return {"virustotal": {"error": code, "description": text}, "integration": INTEGRATION}


class VirusTotalIntegration(Integration):
    """Enriches file-integrity alerts with VirusTotal's verdict on the new MD5."""

    name: ClassVar[str] = INTEGRATION
    required: ClassVar[tuple[str, ...]] = ("api_key",)
    sends_to_analysisd: ClassVar[bool] = True
    # The public API allows 4 lookups a minute and 500 a day: more workers would wait anyway.
    default_concurrency: ClassVar[int] = 2
    default_rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit(4, 60),
        RateLimit(500, 86400),
    )

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self.api_version = context.settings.api_version or DEFAULT_API_VERSION
        if self.api_version not in API_VERSIONS:
            raise ValueError(
                f"virustotal api_version must be one of {', '.join(API_VERSIONS)},"
                f" not {self.api_version!r}"
            )
        self._base_url = block.hook_url.reveal().rstrip("/") if block.hook_url else DEFAULT_BASE_URL
        self._lookups = CachedLookups(CACHE_NAMESPACE, context)

    def needs_request(self, alert: Alert) -> bool:
        md5 = alert_field(alert, "syscheck", "md5_after")
        return is_single_case_md5(md5) and not self._lookups.is_known(md5.lower())

    def receiver_url(self) -> str:
        return self._base_url

    def stats(self) -> dict[str, int]:
        return self._lookups.counts()

    def would_skip(self, alert: Alert) -> str | None:
        if is_single_case_md5(alert_field(alert, "syscheck", "md5_after")):
            return None
        return "no MD5 to look up (syscheck.md5_after missing or not 32 hex digits)"

    def _api_key(self) -> str:
        if not self.block.api_key:
            raise Permanent("virustotal: no api_key")
        return self.block.api_key.reveal()

    async def send(self, alert: Alert) -> None:
        md5 = alert_field(alert, "syscheck", "md5_after")
        if not is_single_case_md5(md5):
            return
        answer = await self._report(md5)
        event = build_virustotal_event(alert, answer)
        await self.context.event_sink().send_event(event, alert, INTEGRATION)

    async def on_give_up(self, alert: Alert, error: DeliveryError) -> None:
        if isinstance(error, AnalysisdUnavailable | EventTooLarge):
            # The lookup worked; it is analysisd that could not take the event.
            return
        if not is_single_case_md5(alert_field(alert, "syscheck", "md5_after")):
            return
        event = build_error_event(error, self.api_version)
        if event is not None:
            await self.context.event_sink().send_event(event, alert, INTEGRATION)

    async def _report(self, md5: str) -> dict[str, Any]:
        lookup = self._lookup_v2 if self.api_version == "v2" else self._lookup_v3
        return await self._lookups.answer(md5.lower(), lambda: lookup(md5))

    async def _lookup_v2(self, md5: str) -> dict[str, Any]:
        status, body = await get_json(
            self.context.session(),
            f"{self._base_url}/vtapi/v2/file/report",
            params={"apikey": self._api_key(), "resource": md5},
            timeout_s=self.block.timeout_s,
            ok_statuses=frozenset({200, 204}),
            secrets=self.block.secrets,
        )
        if status == 204:
            raise RateLimited("VirusTotal: HTTP 204, public API quota reached", status=204)
        return answer_from_v2(body)

    async def _lookup_v3(self, md5: str) -> dict[str, Any]:
        status, body = await get_json(
            self.context.session(),
            f"{self._base_url}/api/v3/files/{md5}",
            headers={"x-apikey": self._api_key()},
            timeout_s=self.block.timeout_s,
            ok_statuses=frozenset({200, 404}),
            secrets=self.block.secrets,
        )
        if status == 404:
            if _is_v3_not_found(body):
                return dict(NOT_FOUND)
            raise Permanent("VirusTotal: HTTP 404 without NotFoundError", status=404)
        return answer_from_v3(md5, body)
