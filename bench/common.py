"""What every scenario shares: sizes, the run context, and how results are told."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; ``--quick`` shrinks them while developing."""

    filter_alerts: int = 1_000_000
    delivery_alerts: int = 100_000
    stock_alerts: int = 50
    latency_rate_per_s: int = 1_000
    latency_duration_s: float = 30.0
    memory_alerts: int = 1_000_000
    memory_down_max_s: float = 300.0
    memory_up_max_s: float = 420.0
    isolation_alerts: int = 20_000
    script_alerts: int = 1_000
    runs: int = 3
    long_runs: int = 3
    memory_runs: int = 1

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            filter_alerts=100_000,
            delivery_alerts=10_000,
            stock_alerts=10,
            latency_duration_s=5.0,
            memory_alerts=50_000,
            memory_down_max_s=60.0,
            memory_up_max_s=120.0,
            isolation_alerts=3_000,
            script_alerts=200,
            runs=1,
            long_runs=1,
            memory_runs=1,
        )


@dataclass
class Context:
    """Handed to every scenario."""

    sizes: Sizes
    work: Path  # a temporary directory for data files, removed at the end
    nginx: str | None  # the nginx binary, or None: fall back to our receiver
    profile: bool
    results_dir: Path
    data: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One figure against its target."""

    what: str
    value: float
    unit: str
    target: str
    passed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
        }


@dataclass
class Outcome:
    """A scenario's result: its checks, every figure, and notes for the report."""

    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def per_s(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")
