"""Sampling the daemon with py-spy and telling where its time goes.

py-spy samples the real process from outside (no instrumentation cost inside
it), writing collapsed stacks; we fold them into per-function self and total
shares, which is what the report shows.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_LINE_NUMBER = re.compile(r":\d+\)$")
SAMPLE_RATE_HZ = 200


def py_spy() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


def profiler_command(output: Path) -> list[str] | None:
    """The prefix that runs a command under py-spy, or None without py-spy."""
    binary = py_spy()
    if binary is None:
        return None
    return [
        binary,
        "record",
        "--rate",
        str(SAMPLE_RATE_HZ),
        "--format",
        "raw",
        "--output",
        str(output),
        "--",
    ]


def _function(frame: str) -> str:
    # "name (path/to/module.py:123)" -> "name (module.py)": lines differ, functions don't.
    name, _, where = frame.partition(" (")
    where = _LINE_NUMBER.sub(")", "(" + where) if where else ""
    path = where.strip("()")
    short = "/".join(Path(path).parts[-2:]) if path else ""
    return f"{name} ({short})" if short else name


def summarize(collapsed: Path, top: int = 15) -> dict[str, object]:
    """Self and total sample shares per function, biggest first."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        for function in set(frames):
            total_samples[function] += count

    # The call chain's roots (runpy, the CLI, the event loop) are in nearly every
    # sample and say nothing: the total column starts below them.
    for name, n in list(total_samples.items()):
        if n >= 0.9 * samples:
            del total_samples[name]

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / samples, 1)) for name, n in counter.most_common(top)]

    return {"samples": samples, "self": shares(self_samples), "total": shares(total_samples)}


def as_markdown(summary: dict[str, object], title: str) -> str:
    lines = [
        f"#### {title}",
        "",
        f"py-spy, {SAMPLE_RATE_HZ} Hz, {summary['samples']} samples of the daemon process.",
        "",
        "| self % | function | | total % | function |",
        "| ---: | --- | --- | ---: | --- |",
    ]
    self_rows = summary["self"]
    total_rows = summary["total"]
    assert isinstance(self_rows, list) and isinstance(total_rows, list)
    for index in range(max(len(self_rows), len(total_rows))):
        left = self_rows[index] if index < len(self_rows) else ("", "")
        right = total_rows[index] if index < len(total_rows) else ("", "")
        lines.append(f"| {left[1]} | `{left[0]}` | | {right[1]} | `{right[0]}` |")
    return "\n".join(lines) + "\n"
