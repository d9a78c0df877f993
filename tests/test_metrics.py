"""The metrics registry, read back through a strict parser of the text format,
and the endpoint through real HTTP requests."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wazuh_integrator import __version__
from wazuh_integrator.errors import IntegratorError
from wazuh_integrator.metrics import (
    CONTENT_TYPE,
    DELIVERY_OUTCOMES,
    INVALID_REASONS,
    Counter,
    Gauge,
    Histogram,
    Metrics,
    Registry,
    format_address,
    serve_metrics,
)

# --- a strict reader of the exposition format 0.0.4 -------------------------

_SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)\Z")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|\Z)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


@dataclass
class Family:
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


_SPECIAL_VALUES = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}


def parse_value(text: str) -> float:
    return _SPECIAL_VALUES[text] if text in _SPECIAL_VALUES else float(text)


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        assert match, f"bad labels at {text[position:]!r}"
        name, raw = match.group(1), match.group(2)
        assert name not in labels, f"label {name} twice"
        labels[name] = re.sub(r"\\.", lambda m: _UNESCAPE[m.group(0)], raw)
        position = match.end()
    return labels


def family_of(sample_name: str, families: Mapping[str, Family]) -> str:
    if sample_name in families and families[sample_name].kind != "histogram":
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name.removesuffix(suffix)
        if base != sample_name and families.get(base, Family()).kind == "histogram":
            return base
    raise AssertionError(f"sample {sample_name} has no TYPE line before it")


def parse(text: str) -> dict[str, Family]:
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            families.setdefault(name, Family()).help = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            assert kind in {"counter", "gauge", "histogram"}
            assert not families.get(name, Family()).kind, f"TYPE {name} twice"
            families.setdefault(name, Family()).kind = kind
        else:
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            labels = parse_labels(match.group("labels") or "")
            base = family_of(match.group("name"), families)
            families[base].samples.append(
                (match.group("name"), labels, parse_value(match.group("value")))
            )
    return families


def value_of(families: Mapping[str, Family], sample: str, **labels: str) -> float:
    base = family_of(sample, families)
    found = [v for name, got, v in families[base].samples if name == sample and got == labels]
    assert len(found) == 1, f"{sample}{labels}: {len(found)} samples"
    return found[0]


# --- the project's metrics -----------------------------------------------------

PER_INTEGRATION = [
    "wazuh_integrator_alerts_matched_total",
    "wazuh_integrator_delivery_attempts_total",
    "wazuh_integrator_queue_depth",
    "wazuh_integrator_parked",
    "wazuh_integrator_dead_letters",
    "wazuh_integrator_rate_limited_total",
    "wazuh_integrator_delivery_seconds_count",
    "wazuh_integrator_delivery_seconds_sum",
]


def test_a_fresh_registry_renders_parseable_text_with_help_and_type() -> None:
    families = parse(Metrics().render())

    assert all(f.kind and f.help for f in families.values())
    assert value_of(families, "wazuh_integrator_up") == 0
    assert value_of(families, "wazuh_integrator_alerts_read_total") == 0
    assert value_of(families, "wazuh_integrator_checkpoint_lag_bytes") == 0
    assert value_of(families, "wazuh_integrator_lost_bytes_total") == 0
    assert value_of(families, "wazuh_integrator_start_time_seconds") > 0
    assert families["wazuh_integrator_build_info"].samples[0][1]["version"] == __version__


@pytest.mark.parametrize(
    ("sample", "label", "values"),
    [
        ("wazuh_integrator_alerts_invalid_total", "reason", INVALID_REASONS),
        ("wazuh_integrator_config_reloads_total", "result", ("applied", "refused")),
    ],
)
def test_fixed_label_sets_read_zero_from_the_start(
    sample: str, label: str, values: tuple[str, ...]
) -> None:
    families = parse(Metrics().render())

    for value in values:
        assert value_of(families, sample, **{label: value}) == 0


@pytest.mark.parametrize("sample", PER_INTEGRATION)
def test_register_integration_creates_its_series_at_zero(sample: str) -> None:
    metrics = Metrics()
    assert 'integration="slack#0"' not in metrics.render()

    metrics.register_integration("slack#0")

    assert value_of(parse(metrics.render()), sample, integration="slack#0") == 0


@pytest.mark.parametrize("outcome", DELIVERY_OUTCOMES)
def test_register_integration_creates_every_outcome(outcome: str) -> None:
    metrics = Metrics()
    metrics.register_integration("pagerduty#1")

    families = parse(metrics.render())
    assert (
        value_of(
            families,
            "wazuh_integrator_deliveries_total",
            integration="pagerduty#1",
            outcome=outcome,
        )
        == 0
    )


def test_register_integration_twice_keeps_counts() -> None:
    metrics = Metrics()
    metrics.register_integration("slack#0")
    metrics.alerts_matched_total.labels(integration="slack#0").inc(3)
    metrics.register_integration("slack#0")

    families = parse(metrics.render())
    assert value_of(families, "wazuh_integrator_alerts_matched_total", integration="slack#0") == 3


def test_forget_integration_drops_only_its_series() -> None:
    metrics = Metrics()
    metrics.register_integration("slack#0")
    metrics.register_integration("shuffle#1")

    metrics.forget_integration("slack#0")

    text = metrics.render()
    assert 'integration="slack#0"' not in text
    families = parse(text)
    assert value_of(families, "wazuh_integrator_parked", integration="shuffle#1") == 0


def test_events_show_in_the_render() -> None:
    metrics = Metrics()
    metrics.register_integration("slack#0")
    metrics.up.set(1)
    metrics.alerts_read_total.inc(5)
    metrics.alerts_invalid_total.labels(reason="not_json").inc()
    metrics.deliveries_total.labels(integration="slack#0", outcome="delivered").inc(4)
    metrics.parked.labels(integration="slack#0").set(2)
    metrics.lost_bytes_total.inc(1024)

    families = parse(metrics.render())
    assert value_of(families, "wazuh_integrator_up") == 1
    assert value_of(families, "wazuh_integrator_alerts_read_total") == 5
    assert value_of(families, "wazuh_integrator_alerts_invalid_total", reason="not_json") == 1
    assert (
        value_of(
            families,
            "wazuh_integrator_deliveries_total",
            integration="slack#0",
            outcome="delivered",
        )
        == 4
    )
    assert value_of(families, "wazuh_integrator_parked", integration="slack#0") == 2
    assert value_of(families, "wazuh_integrator_lost_bytes_total") == 1024


# --- the registry's building blocks ------------------------------------------


def render_one(family: Counter | Gauge | Histogram) -> dict[str, Family]:
    registry = Registry()
    registry.register(family)
    return parse(registry.render())


def test_gauge_moves_both_ways() -> None:
    gauge = Gauge("g", "g", ("integration",))
    child = gauge.labels(integration="a")
    child.inc(5)
    child.dec(2)

    assert value_of(render_one(gauge), "g", integration="a") == 3


def test_help_text_is_escaped() -> None:
    families = render_one(Counter("c_total", "a \\ backslash\nand a newline"))

    assert families["c_total"].help == "a \\\\ backslash\\nand a newline"


@given(st.text())
def test_label_values_round_trip_through_the_text(value: str) -> None:
    counter = Counter("c_total", "c", ("integration",))
    counter.labels(integration=value).inc(2)

    assert value_of(render_one(counter), "c_total", integration=value) == 2


@pytest.mark.parametrize(
    ("observations", "expected_buckets"),
    [
        ([], [0, 0, 0, 0]),
        ([0.1], [1, 1, 1, 1]),  # a value equal to a bound falls in that bucket
        ([0.10001], [0, 1, 1, 1]),
        ([0.0, 0.5, 1.0, 7.0], [1, 2, 3, 4]),
        ([99.0, 100.0], [0, 0, 0, 2]),
    ],
)
def test_histogram_buckets_are_cumulative_and_inclusive(
    observations: list[float], expected_buckets: list[int]
) -> None:
    histogram = Histogram("h_seconds", "h", ("integration",), buckets=(0.1, 0.5, 1.0))
    for value in observations:
        histogram.labels(integration="a").observe(value)
    if not observations:
        histogram.labels(integration="a")

    families = render_one(histogram)
    buckets = [
        (labels["le"], v)
        for name, labels, v in families["h_seconds"].samples
        if name.endswith("_bucket")
    ]
    assert buckets == list(zip(["0.1", "0.5", "1.0", "+Inf"], expected_buckets, strict=True))
    assert value_of(families, "h_seconds_count", integration="a") == len(observations)
    assert value_of(families, "h_seconds_sum", integration="a") == pytest.approx(sum(observations))


def test_unlabelled_histogram() -> None:
    histogram = Histogram("h_seconds", "h", buckets=(1.0,))
    histogram.observe(0.5)
    histogram.observe(2)

    families = render_one(histogram)
    assert value_of(families, "h_seconds_bucket", le="1.0") == 1
    assert value_of(families, "h_seconds_bucket", le="+Inf") == 2


# --- the endpoint --------------------------------------------------------------


class HealthSource:
    """A health report the tests change between requests."""

    def __init__(self) -> None:
        self.report: dict[str, Any] = {"status": "ok", "integrations": {"slack#0": "ok"}}
        self.error: Exception | None = None

    def __call__(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return self.report


@pytest.fixture
def metrics() -> Metrics:
    metrics = Metrics()
    metrics.register_integration("slack#0")
    return metrics


@pytest.fixture
def health() -> HealthSource:
    return HealthSource()


@pytest.fixture
async def base_url(metrics: Metrics, health: HealthSource) -> AsyncIterator[str]:
    runner = await serve_metrics(metrics, "127.0.0.1", 0, health)
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_metrics_endpoint_serves_the_current_registry(
    metrics: Metrics, base_url: str
) -> None:
    metrics.deliveries_total.labels(integration="slack#0", outcome="parked").inc()

    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/metrics") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == CONTENT_TYPE
        families = parse(await answer.text())

    assert (
        value_of(
            families, "wazuh_integrator_deliveries_total", integration="slack#0", outcome="parked"
        )
        == 1
    )


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ({"status": "ok", "integrations": {"slack#0": "ok"}}, 200),
        ({"status": "degraded", "integrations": {"slack#0": "failing"}}, 200),
        ({"status": "running", "uptime_s": 3.5}, 200),
        ({"uptime_s": 3.5}, 200),
        ({"status": "stopping"}, 503),
        ({"status": "down"}, 503),
        ({"status": "starting"}, 503),
    ],
)
async def test_health_endpoint_reports_json_with_a_status_code(
    health: HealthSource, base_url: str, report: dict[str, Any], status: int
) -> None:
    health.report = report

    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/health") as answer:
        assert answer.status == status
        assert answer.content_type == "application/json"
        assert await answer.json() == report


async def test_a_failing_health_report_answers_500_without_its_message(
    health: HealthSource, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    health.error = RuntimeError("cannot reach https://hooks.slack.com/services/T0/B0/xoxb-TOKEN")

    with caplog.at_level(logging.DEBUG):
        async with aiohttp.ClientSession() as session, session.get(f"{base_url}/health") as answer:
            assert answer.status == 500
            body = await answer.text()

    assert "RuntimeError" in body
    assert "TOKEN" not in body
    assert "TOKEN" not in caplog.text


async def test_other_paths_are_not_found(base_url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/secrets") as answer:
        assert answer.status == 404


async def test_a_busy_port_fails_to_serve(metrics: Metrics, health: HealthSource) -> None:
    runner = await serve_metrics(metrics, "127.0.0.1", 0, health)
    try:
        port = runner.addresses[0][1]
        with pytest.raises(IntegratorError) as caught:
            await serve_metrics(metrics, "127.0.0.1", port, health)
        assert str(caught.value) == (
            f"metrics_address 127.0.0.1:{port}: cannot listen there: Address already in use"
            " (is another daemon running? choose another port in integrator.toml)"
        )
    finally:
        await runner.cleanup()


def test_process_metrics_are_served_beside_ours() -> None:
    families = parse(Metrics().render())

    assert value_of(families, "process_resident_memory_bytes") > 0
    assert "process_cpu_seconds_total" in families


def test_two_metrics_objects_do_not_share_series() -> None:
    first, second = Metrics(), Metrics()
    first.alerts_read_total.inc(5)

    assert value_of(parse(second.render()), "wazuh_integrator_alerts_read_total") == 0


@pytest.mark.parametrize(
    ("host", "port", "shown"),
    [("127.0.0.1", 9758, "127.0.0.1:9758"), ("::1", 9758, "[::1]:9758")],
)
def test_addresses_are_shown_as_in_a_url(host: str, port: int, shown: str) -> None:
    assert format_address(host, port) == shown


# --- updates without prometheus-client's lock ----------------------------------


def test_a_labelled_family_still_refuses_updates_without_labels() -> None:
    counter = Counter("c_total", "c", ("integration",))
    gauge = Gauge("g", "g", ("integration",))

    with pytest.raises(ValueError, match="missing label values"):
        counter.inc()
    with pytest.raises(ValueError, match="missing label values"):
        gauge.set(1)


def test_a_counter_refuses_to_go_down_and_keeps_an_exemplar() -> None:
    counter = Counter("c_total", "c", ("integration",))
    child = counter.labels(integration="a")

    with pytest.raises(ValueError, match="non-negative"):
        child.inc(-1)
    child.inc(2, exemplar={"trace_id": "abc"})

    assert child.value == 2
    assert child._value.get_exemplar().labels == {"trace_id": "abc"}


def test_a_gauge_set_to_a_function_reads_it_at_each_scrape_and_value() -> None:
    gauge = Gauge("g", "g", ("integration",))
    waiting = [3]
    child = gauge.labels(integration="a")
    child.set_function(lambda: waiting[0])

    assert child.value == 3
    assert value_of(render_one(gauge), "g", integration="a") == 3
    waiting[0] = 7
    assert child.value == 7
    assert value_of(render_one(gauge), "g", integration="a") == 7


def test_updates_made_in_a_loop_are_all_counted() -> None:
    counter = Counter("c_total", "c", ("integration",))
    histogram = Histogram("h_seconds", "h", ("integration",), buckets=(0.5,))
    child = counter.labels(integration="a")
    timing = histogram.labels(integration="a")
    for n in range(10_000):
        child.inc()
        timing.observe(n % 2)

    families = render_one(counter)
    assert value_of(families, "c_total", integration="a") == 10_000
    assert timing.count == 10_000
    assert timing.sum == 5_000
    assert value_of(render_one(histogram), "h_seconds_bucket", integration="a", le="0.5") == 5_000
