"""Every metric of the daemon, defined here and nowhere else, and the HTTP
endpoint that serves them with the health report.

The metrics are prometheus-client's, in a registry of our own (never the
library's global one, so that two pipelines in one process, as in the tests,
do not collide), with the process's ``process_*`` metrics beside them. The
classes here add what the rest of the code reads: a child's ``value`` (and a
histogram's ``count``), and :meth:`remove_where` for a reload.

Label values are integration keys such as ``slack#0`` and fixed words, never
URLs, API keys or anything taken from an alert, so that a series can neither
leak a secret nor multiply without bound.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson
import prometheus_client
from prometheus_client import CollectorRegistry, ProcessCollector

from wazuh_integrator import __version__
from wazuh_integrator.errors import IntegratorError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "CONTENT_TYPE",
    "DELIVERY_OUTCOMES",
    "DELIVERY_SECONDS_BUCKETS",
    "HEALTHY_STATUSES",
    "INVALID_REASONS",
    "RELOAD_RESULTS",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "Metrics",
    "Registry",
    "format_address",
    "serve_metrics",
]

log = logging.getLogger(__name__)

# The `_created` series double every counter for a value nobody here reads.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

PREFIX: Final = "wazuh_integrator_"
CONTENT_TYPE: Final = prometheus_client.CONTENT_TYPE_LATEST

DELIVERY_OUTCOMES: Final = ("delivered", "skipped", "retried", "parked", "dead_lettered", "failed")
INVALID_REASONS: Final = ("not_json", "oversize", "no_rule", "too_deep")
RELOAD_RESULTS: Final = ("applied", "refused")
# From a local receiver's milliseconds to the slowest script or API worth timing.
DELIVERY_SECONDS_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class _Family:
    """What our metric classes add to prometheus-client's."""

    _labelnames: tuple[str, ...]

    def remove_where(self, label: str, value: str) -> int:
        """Drop every series whose ``label`` is ``value``; returns how many."""
        position = self._labelnames.index(label)
        series: dict[tuple[str, ...], Any] = getattr(self, "_metrics", {})
        doomed = [key for key in list(series) if key[position] == value]
        for key in doomed:
            series.pop(key, None)
        return len(doomed)

    @property
    def labelnames(self) -> tuple[str, ...]:
        return tuple(self._labelnames)


def _unregistered(kwargs: dict[str, Any]) -> dict[str, Any]:
    # Never prometheus-client's global registry: Registry.register adds ours.
    kwargs.setdefault("registry", None)
    return kwargs


class _UnlockedValue:
    """A series' number without prometheus-client's lock.

    The daemon updates and reads its metrics on one thread, the event loop's
    (``/metrics`` is served by the same loop), so the lock taken on every
    update only cost time: a few updates per alert, on the reader's core.
    """

    __slots__ = ("_exemplar", "_value")
    _multiprocess = False

    def __init__(self) -> None:
        self._value = 0.0
        self._exemplar: Any = None

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value

    def set_exemplar(self, exemplar: Any) -> None:
        self._exemplar = exemplar

    def get(self) -> float:
        return self._value

    def get_exemplar(self) -> Any:
        return self._exemplar


class Counter(_Family, prometheus_client.Counter):
    # True once a series holds a value: a child, or a counter without labels.
    # A family with labels is never observable, and the library's own checks
    # (which raise) are kept for it.
    _observable = False

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(name, documentation, labelnames, **_unregistered(kwargs))

    def _metric_init(self) -> None:
        super()._metric_init()
        self._value = _UnlockedValue()
        self._observable = True

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount < 0 or exemplar or not self._observable:
            super().inc(amount, exemplar)  # raises, or keeps the exemplar
            return
        self._value.inc(amount)

    @property
    def value(self) -> float:
        """This series' count (a child's, or an unlabelled counter's)."""
        return float(self._value.get())


class Gauge(_Family, prometheus_client.Gauge):
    _observable = False
    _function: Callable[[], float] | None = None

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(name, documentation, labelnames, **_unregistered(kwargs))

    def _metric_init(self) -> None:
        super()._metric_init()
        self._value = _UnlockedValue()
        self._observable = True

    def set(self, value: float) -> None:
        if not self._observable or self._is_most_recent:
            super().set(value)
            return
        self._value.set(float(value))

    def set_function(self, f: Callable[[], float]) -> None:
        """Read the value from ``f`` when it is asked for (a scrape, ``value``)
        instead of setting it on every change."""
        super().set_function(f)
        self._function = f

    @property
    def value(self) -> float:
        if self._function is not None:
            return float(self._function())
        return float(self._value.get())


class Histogram(_Family, prometheus_client.Histogram):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DELIVERY_SECONDS_BUCKETS,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, documentation, labelnames, buckets=buckets, **_unregistered(kwargs))

    def _metric_init(self) -> None:
        super()._metric_init()
        self._sum = _UnlockedValue()
        self._buckets = [_UnlockedValue() for _ in self._upper_bounds]

    @property
    def count(self) -> int:
        """Observations of this series."""
        return int(sum(bucket.get() for bucket in self._buckets))

    @property
    def sum(self) -> float:
        return float(self._sum.get())


# A series (what ``labels()`` returns) is an instance of its family's class.
CounterChild = Counter
GaugeChild = Gauge
HistogramChild = Histogram
Family = Counter | Gauge | Histogram
FamilyT = TypeVar("FamilyT", Counter, Gauge, Histogram)


class Registry:
    """The daemon's own prometheus-client registry, with the process metrics."""

    def __init__(self) -> None:
        self.collector_registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.collector_registry)
        self._families: list[Family] = []

    def register(self, family: FamilyT) -> FamilyT:
        self.collector_registry.register(family)
        self._families.append(family)
        return family

    def families(self) -> list[Family]:
        return list(self._families)

    def render(self) -> str:
        return prometheus_client.generate_latest(self.collector_registry).decode()


class Metrics:
    """The project's metrics. Integrations appear under their key (``slack#0``)."""

    def __init__(self, *, buckets: Sequence[float] = DELIVERY_SECONDS_BUCKETS) -> None:
        self.registry = Registry()
        add = self.registry.register
        self.up = add(Gauge(PREFIX + "up", "1 while the daemon reads and delivers alerts, else 0."))
        self.build_info = add(
            Gauge(
                PREFIX + "build_info",
                "Always 1; the labels tell the running version.",
                ("version", "python"),
            )
        )
        self.start_time_seconds = add(
            Gauge(PREFIX + "start_time_seconds", "When the daemon started, in Unix time.")
        )
        self.alerts_read_total = add(
            Counter(
                PREFIX + "alerts_read_total", "Lines read from alerts.json, the oversize ones too."
            )
        )
        self.alerts_invalid_total = add(
            Counter(
                PREFIX + "alerts_invalid_total",
                "Lines skipped: not JSON, too long, without a rule, or nested too deeply.",
                ("reason",),
            )
        )
        self.alerts_matched_total = add(
            Counter(
                PREFIX + "alerts_matched_total",
                "Alerts that passed an integration's filters.",
                ("integration",),
            )
        )
        self.deliveries_total = add(
            Counter(
                PREFIX + "deliveries_total",
                "Delivery outcomes: delivered, skipped (the integration sends nothing for it),"
                " retried, parked, dead_lettered, failed.",
                ("integration", "outcome"),
            )
        )
        self.delivery_attempts_total = add(
            Counter(
                PREFIX + "delivery_attempts_total",
                "Attempts to deliver, first tries and retries alike.",
                ("integration",),
            )
        )
        self.delivery_seconds = add(
            Histogram(
                PREFIX + "delivery_seconds",
                "Duration of one delivery attempt, in seconds.",
                ("integration",),
                buckets=buckets,
            )
        )
        self.queue_depth = add(
            Gauge(
                PREFIX + "queue_depth",
                "Alerts waiting in an integration's in-memory queue.",
                ("integration",),
            )
        )
        self.parked = add(
            Gauge(
                PREFIX + "parked",
                "Deliveries parked in the state store, waiting for a retry.",
                ("integration",),
            )
        )
        self.dead_letters = add(
            Gauge(
                PREFIX + "dead_letters",
                "Deliveries given up and kept in the dead-letter table.",
                ("integration",),
            )
        )
        self.rate_limited_total = add(
            Counter(
                PREFIX + "rate_limited_total",
                "Times a delivery waited for the rate limit or the receiver said slow down.",
                ("integration",),
            )
        )
        self.alerts_excluded_total = add(
            Counter(
                PREFIX + "alerts_excluded_total",
                "Alerts that passed the stock filters but not [integrations.*.filter].",
                ("integration",),
            )
        )
        self.alerts_suppressed_total = add(
            Counter(
                PREFIX + "alerts_suppressed_total",
                "Alerts a throttle counted and did not send.",
                ("integration",),
            )
        )
        self.alerts_digested_total = add(
            Counter(
                PREFIX + "alerts_digested_total",
                "Alerts collected into a digest instead of being sent one by one.",
                ("integration",),
            )
        )
        self.digests_total = add(
            Counter(
                PREFIX + "digests_total",
                "Digest messages handed to delivery.",
                ("integration",),
            )
        )
        self.checkpoint_lag_bytes = add(
            Gauge(
                PREFIX + "checkpoint_lag_bytes",
                "Bytes of alerts.json read but not yet below the persisted checkpoint.",
            )
        )
        self.lost_bytes_total = add(
            Counter(
                PREFIX + "lost_bytes_total",
                "Bytes of alerts.json never read (rotated or truncated away first).",
            )
        )
        self.config_reloads_total = add(
            Counter(
                PREFIX + "config_reloads_total",
                "Configuration reloads, by result: applied, or refused (the old one stays).",
                ("result",),
            )
        )

        self.build_info.labels(version=__version__, python=platform.python_version()).set(1)
        self.start_time_seconds.set(time.time())
        for reason in INVALID_REASONS:
            self.alerts_invalid_total.labels(reason=reason)
        for result in RELOAD_RESULTS:
            self.config_reloads_total.labels(result=result)

    def _per_integration(self) -> list[Family]:
        return [f for f in self.registry.families() if "integration" in f.labelnames]

    def register_integration(self, key: str) -> None:
        """Create every series of integration ``key`` so that it reads zero at once."""
        for family in self._per_integration():
            if family is self.deliveries_total:
                for outcome in DELIVERY_OUTCOMES:
                    self.deliveries_total.labels(integration=key, outcome=outcome)
            else:
                family.labels(integration=key)

    def forget_integration(self, key: str) -> None:
        """Drop every series of integration ``key`` (removed by a reload)."""
        for family in self._per_integration():
            family.remove_where("integration", key)

    def render(self) -> str:
        return self.registry.render()


HealthReport = Callable[[], Mapping[str, Any]]
# Statuses that answer 200, so that a probe neither restarts nor drops the
# daemon; "degraded" (one receiver failing) is healthy: a restart cannot fix it.
HEALTHY_STATUSES: Final = frozenset({"ok", "running", "degraded"})


async def serve_metrics(
    metrics: Metrics, host: str, port: int, health: HealthReport
) -> web.AppRunner:
    """Serve ``/metrics`` (Prometheus text) and ``/health`` (JSON) until the
    returned runner is cleaned up. ``port`` 0 picks a free port: read it from
    ``runner.addresses``.

    ``/health`` answers 200 when ``health()["status"]`` is ``ok``, ``running``
    or ``degraded`` (or absent), 503 for any other status (``stopping``,
    ``starting``, ``down`` …), and 500 if ``health`` itself fails.
    """
    # Only a daemon that serves metrics needs aiohttp's server side.
    from aiohttp import web

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def health_page(request: web.Request) -> web.Response:
        try:
            report = dict(health())
        except Exception as error:
            # Only the type: the message of an unexpected error may hold anything.
            log.error("health report failed: %s", type(error).__name__)
            report = {"status": "error", "error": type(error).__name__}
            return web.json_response(report, status=500, dumps=_dumps)
        status = 200 if report.get("status", "ok") in HEALTHY_STATUSES else 503
        return web.json_response(report, status=status, dumps=_dumps)

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/health", health_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise IntegratorError(
            f"metrics_address {format_address(host, port)}: cannot listen there:"
            f" {os.strerror(exc.errno) if exc.errno else exc}"
            " (is another daemon running? choose another port in integrator.toml)"
        ) from None
    except BaseException:
        await runner.cleanup()
        raise
    shown = ", ".join(format_address(*address[:2]) for address in runner.addresses)
    log.info("Metrics and health served on %s.", shown)
    return runner


def format_address(host: str, port: int) -> str:
    """``host:port`` as written in a URL: ``127.0.0.1:9758``, ``[::1]:9758``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
