"""bench/results/latest.md and latest.json from the scenarios' outcomes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.common import Check, Outcome
from bench.profiling import as_markdown


def _value(check: Check) -> str:
    value = f"{check.value:,.0f}" if abs(check.value) >= 100 else f"{check.value:g}"
    return f"{value} {check.unit}".strip()


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(
    path: Path, machine: dict[str, object], outcomes: list[Outcome], quick: bool, elapsed_s: float
) -> None:
    document = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "elapsed_s": round(elapsed_s, 1),
        "machine": machine,
        "scenarios": {
            outcome.key: {
                "title": outcome.title,
                "passed": outcome.passed,
                "checks": [check.as_json() for check in outcome.checks],
                "figures": outcome.figures,
                "notes": outcome.notes,
            }
            for outcome in outcomes
        },
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def summary_table(outcomes: list[Outcome]) -> str:
    rows = ["| scenario | figure | result | target | |", "| --- | --- | ---: | --- | --- |"]
    for outcome in outcomes:
        for check in outcome.checks:
            mark = "pass" if check.passed else "**miss**"
            rows.append(
                f"| {outcome.title} | {check.what} | {_value(check)} | {check.target} | {mark} |"
            )
    return "\n".join(rows) + "\n"


def write_markdown(
    path: Path,
    machine: dict[str, object],
    outcomes: list[Outcome],
    quick: bool,
    elapsed_s: float,
    analysis: str,
) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`python bench/run.py{' --quick' if quick else ''}` in {elapsed_s / 60:.1f} min"
        + (" (**quick sizes: not the committed full run**)" if quick else "")
        + ".",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python {machine['python']}, "
        f"commit {machine['commit']}.",
        "",
        "## Summary",
        "",
        summary_table(outcomes),
    ]
    for outcome in outcomes:
        lines += [f"## {outcome.title}", ""]
        lines += [*outcome.notes, ""]
        lines += ["| figure | value |", "| --- | ---: |"]
        for key, value in outcome.figures.items():
            if key in ("profile", "per_run", "rss_curve_mb"):
                continue
            lines.append(f"| {key} | {_figure(value)} |")
        lines.append("")
        profile = outcome.figures.get("profile")
        if isinstance(profile, dict) and "self" in profile:
            lines += [as_markdown(profile, f"Profile: {outcome.title}"), ""]
        if "per_run" in outcome.figures:
            lines += [
                "Per run: "
                + "; ".join(
                    ", ".join(f"{k} {v}" for k, v in run.items())
                    for run in outcome.figures["per_run"]
                ),
                "",
            ]
    if analysis:
        lines += [analysis.rstrip(), ""]
    path.write_text("\n".join(lines))
