"""The one small interface every integration implements.

An integration turns an alert into an effect on its service and nothing more:
no retries, sleeps, metrics or outcome logging here. It raises
:class:`~wazuh_integrator.errors.Transient`, :class:`~wazuh_integrator.errors.Permanent`
or :class:`~wazuh_integrator.errors.RateLimited` and the delivery layer decides
what happens next.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings, RateLimit
from wazuh_integrator.errors import DeliveryError

if TYPE_CHECKING:
    import aiohttp

Alert = dict[str, Any]

# Sends in progress at once for the webhooks (Slack, Shuffle, PagerDuty): one
# small POST each, so more of them in flight cost nothing but connections and
# keep a fast receiver busy (bench scenario 2, nginx on loopback: 32 gave about
# a tenth more alerts a second than 8). A service's own quota, such as Slack's
# one message a second per webhook, is a ``rate_limit``, not a concurrency.
WEBHOOK_CONCURRENCY = 32


class EventSink(Protocol):
    """Where enrichment events go: Wazuh's analysisd queue socket."""

    async def send_event(self, event: dict[str, Any], alert: Alert, integration: str) -> None:
        """Send one event, located like ``alert``'s agent. Raises Transient/Permanent."""


class LookupCache(Protocol):
    """A persistent TTL cache for lookups (VirusTotal hashes, Maltiverse indicators)."""

    def get(self, namespace: str, key: str) -> Any | None: ...

    def put(self, namespace: str, key: str, value: Any, ttl_s: float) -> None: ...


@dataclass
class IntegrationContext:
    """What the daemon lends an integration. ``http`` and ``events`` are None
    in ``test`` (dry-run) mode, where only :meth:`Integration.preview` is called."""

    home: Path
    state_dir: Path
    settings: IntegrationSettings
    debug: bool = False
    http: aiohttp.ClientSession | None = None
    events: EventSink | None = None
    cache: LookupCache | None = None

    def session(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("no HTTP session: this context is for dry runs")
        return self.http

    def event_sink(self) -> EventSink:
        if self.events is None:
            raise RuntimeError("no analysisd sink: this context is for dry runs")
        return self.events


def options_problem(problem: str | None) -> str | None:
    """A :meth:`Integration.block_problem` about the block's ``<options>``, so
    named for check-config: ``<options>: "chat_id" must be a number``."""
    return None if problem is None else f"<options>: {problem}"


class Integration(ABC):
    """Base class of every integration, built-in, script or plugin.

    Subclasses set ``name`` (the ``<name>`` of ossec.conf that selects them;
    plugins use a ``custom-`` name so that Wazuh itself accepts the block) and
    ``required`` (the block keys without which the block is disabled).
    """

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    needs_script: ClassVar[bool] = False
    default_concurrency: ClassVar[int] = 8
    default_rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    retry_by_default: ClassVar[bool] = True
    # Enrichments send their results to analysisd's queue socket.
    sends_to_analysisd: ClassVar[bool] = False
    # Whether ``context.http`` is used. Outputs that speak another protocol say
    # False: a daemon made only of them then starts no HTTP session or transport.
    uses_http: ClassVar[bool] = True

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        self.block = block
        self.context = context

    @classmethod
    def block_problem(cls, block: IntegrationBlock) -> str | None:
        """Why ``block`` cannot run, past a missing ``required`` key: its
        ``<options>`` (see :func:`options_problem`), a ``hook_url`` this
        integration cannot reach, options it reads together with it; None when
        it can. Pure. ``check-config`` and the daemon disable the block with
        this text, so it must never quote a secret."""
        return None

    @property
    def attempt_timeout_s(self) -> float:
        """How long one whole ``send`` may take before the delivery layer
        abandons the attempt as timed out. One request's ``<timeout>`` by
        default; integrations that make several requests, or scripts that
        do their own retries, allow more."""
        return float(self.block.timeout_s)

    def needs_request(self, alert: Alert) -> bool:
        """Whether delivering ``alert`` calls the service, and so must wait
        for the integration's rate limit. Enrichments answer False when the
        alert has nothing to look up or every answer is cached. Pure and cheap:
        it runs before every attempt."""
        return True

    def receiver_url(self) -> str | None:
        """The URL this integration sends to or asks (``check-config
        --environment`` connects to its host), or None when there is none to
        check (scripts). The block's ``hook_url`` by default."""
        return self.block.hook_url.reveal() if self.block.hook_url else None

    def would_skip(self, alert: Alert) -> str | None:
        """Why this integration sends nothing for ``alert`` although the
        block's filters pass it (Shuffle's own container rules, a VirusTotal
        alert without an MD5), or None when it would be sent.

        Pure and cheap. The delivery layer settles a skipped alert without
        calling :meth:`send`, and ``test`` prints the same reason, so the two
        cannot disagree.
        """
        return None

    def preview(self, alert: Alert) -> Any | None:
        """The exact JSON body this integration would send for ``alert``.

        Pure: no I/O. None for integrations without a body of their own
        (scripts, enrichments) and for alerts the integration itself skips.
        """
        return None

    def templates_changed(self) -> list[str]:
        """The template files this integration compiled whose text has
        changed since: a reload builds the integration again when there are
        any, although its block and settings are the same. None for most."""
        return []

    def stats(self) -> dict[str, int]:
        """Counters of the integration's own for the health report (the
        lookup cache's hits and misses); none for most."""
        return {}

    @abstractmethod
    async def send(self, alert: Alert) -> None:
        """Deliver one alert; raise a DeliveryError subclass on failure."""

    async def on_give_up(self, alert: Alert, error: DeliveryError) -> None:  # noqa: B027
        """Called once when the delivery layer abandons ``alert`` for good.

        VirusTotal uses it to send its error event; most integrations need nothing.
        """

    async def close(self) -> None:  # noqa: B027
        """Release what the integration holds (nothing, for most)."""
