"""Every metric of the daemon, defined here and nowhere else, and the HTTP
endpoint that serves them with the health report.

The registry is a small dependency-free implementation of Prometheus's text
exposition format 0.0.4: counters, gauges and histograms with fixed buckets,
with or without labels. It is meant for the daemon's single asyncio thread
and takes no locks.

Label values are integration keys such as ``slack#0`` and fixed words, never
URLs, API keys or anything taken from an alert, so that a series can neither
leak a secret nor multiply without bound.
"""

from __future__ import annotations

import bisect
import logging
import math
import platform
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final, Generic, TypeVar

import orjson
from aiohttp import web

from wazuh_integrator import __version__

__all__ = [
    "CONTENT_TYPE",
    "DELIVERY_OUTCOMES",
    "DELIVERY_SECONDS_BUCKETS",
    "HEALTHY_STATUSES",
    "INVALID_REASONS",
    "RELOAD_RESULTS",
    "Counter",
    "Gauge",
    "Histogram",
    "Metrics",
    "Registry",
    "serve_metrics",
]

log = logging.getLogger(__name__)

PREFIX: Final = "wazuh_integrator_"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

DELIVERY_OUTCOMES: Final = ("delivered", "retried", "parked", "dead_lettered", "failed")
INVALID_REASONS: Final = ("not_json", "oversize", "no_rule")
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

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

LabelValues = tuple[str, ...]


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _format_bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format_labels(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in pairs)
    return "{" + inner + "}"


class CounterChild:
    """One series of a counter: a value that only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter cannot decrease")
        self.value += amount


class GaugeChild:
    """One series of a gauge: a value that goes up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild:
    """One series of a histogram: counts per bucket, a sum and a count."""

    __slots__ = ("bounds", "bucket_counts", "count", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.bucket_counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Buckets are "less than or equal": bisect_left finds the first bound >= value.
        self.bucket_counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value


ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[ChildT]):
    """A named metric and its series, one per combination of label values."""

    kind: ClassVar[str]

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name: {name!r}")
        for label in labelnames:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name for {name}: {label!r}")
        if len(set(labelnames)) != len(labelnames):
            raise ValueError(f"duplicate label names for {name}: {labelnames!r}")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[LabelValues, ChildT] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> ChildT:
        raise NotImplementedError

    def labels(self, **values: str) -> ChildT:
        """The series for these label values, created (at zero) on first use."""
        if values.keys() != set(self.labelnames):
            raise ValueError(
                f"{self.name} takes labels {sorted(self.labelnames)}, not {sorted(values)}"
            )
        key = tuple(str(values[label]) for label in self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _unlabelled(self) -> ChildT:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {list(self.labelnames)}: use labels()")
        return self._children[()]

    def remove_where(self, label: str, value: str) -> int:
        """Drop every series whose ``label`` is ``value``; returns how many."""
        position = self.labelnames.index(label)
        doomed = [key for key in self._children if key[position] == value]
        for key in doomed:
            del self._children[key]
        return len(doomed)

    def series(self) -> Iterator[tuple[LabelValues, ChildT]]:
        yield from sorted(self._children.items())

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.documentation)}"
        yield f"# TYPE {self.name} {self.kind}"
        for values, child in self.series():
            yield from self._render_child(list(zip(self.labelnames, values, strict=True)), child)

    def _render_child(self, pairs: list[tuple[str, str]], child: ChildT) -> Iterator[str]:
        raise NotImplementedError

    def _scalar_line(self, pairs: list[tuple[str, str]], value: float) -> str:
        return f"{self.name}{_format_labels(pairs)} {_format_value(value)}"


class Counter(_Family[CounterChild]):
    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)

    def _render_child(self, pairs: list[tuple[str, str]], child: CounterChild) -> Iterator[str]:
        yield self._scalar_line(pairs, child.value)


class Gauge(_Family[GaugeChild]):
    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._unlabelled().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._unlabelled().dec(amount)

    def _render_child(self, pairs: list[tuple[str, str]], child: GaugeChild) -> Iterator[str]:
        yield self._scalar_line(pairs, child.value)


class Histogram(_Family[HistogramChild]):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DELIVERY_SECONDS_BUCKETS,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be distinct, increasing and not empty")
        if "le" in labelnames:
            raise ValueError(f"{name}: 'le' is reserved for histogram buckets")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        self._unlabelled().observe(value)

    def _render_child(self, pairs: list[tuple[str, str]], child: HistogramChild) -> Iterator[str]:
        cumulative = 0
        for bound, count in zip((*self.bounds, math.inf), child.bucket_counts, strict=True):
            cumulative += count
            labels = _format_labels([*pairs, ("le", _format_bound(bound))])
            yield f"{self.name}_bucket{labels} {cumulative}"
        yield f"{self.name}_sum{_format_labels(pairs)} {_format_value(child.sum)}"
        yield f"{self.name}_count{_format_labels(pairs)} {child.count}"


Family = Counter | Gauge | Histogram
FamilyT = TypeVar("FamilyT", Counter, Gauge, Histogram)


class Registry:
    """Metrics in the order they were registered, rendered together."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def register(self, family: FamilyT) -> FamilyT:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is already registered")
        self._families[family.name] = family
        return family

    def families(self) -> list[Family]:
        return list(self._families.values())

    def render(self) -> str:
        lines = [line for family in self._families.values() for line in family.render()]
        return "\n".join(lines) + "\n"


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
            Counter(PREFIX + "alerts_read_total", "Lines read from alerts.json.")
        )
        self.alerts_invalid_total = add(
            Counter(
                PREFIX + "alerts_invalid_total",
                "Lines skipped: not JSON, longer than the limit, or without a rule.",
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
                "Delivery outcomes: delivered, retried, parked, dead_lettered, failed.",
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
    except BaseException:
        await runner.cleanup()
        raise
    log.info("metrics and health served on %s", runner.addresses)
    return runner


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
