"""Start-up time: ``run --once`` on an empty alerts file against scenario 1's
home (three blocks: slack, shuffle, a custom script), wall and CPU seconds,
median of N starts. Give it several source trees to compare them in turns
(A/B/A/B) on the same machine state::

    git archive main | tar -x -C /tmp/before
    python -m compileall -q /tmp/before/src src
    python -m bench.startup --starts 10 before=/tmp/before/src after=src

Compile the trees first (as ``bench/run.py`` does and pip does on install):
without bytecode every start compiles the package's sources again.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median
from bench.scenarios.filtering import _home


def one_start(source: Path, empty: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``run --once`` with ``source`` first on the path."""
    environment = dict(os.environ, PYTHONPATH=str(source.resolve()))
    with _home(port=9) as home:
        command = [sys.executable, "-m", "wazuh_integrator", "--home", str(home.root), "run"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            [*command, "--once", "--alerts", str(empty)],
            capture_output=True,
            env=environment,
            timeout=120,
            check=False,
        )
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"run --once failed:\n{result.stderr.decode(errors='replace')[-3000:]}")
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall_s, cpu_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("trees", nargs="+", metavar="LABEL=SRC")
    args = parser.parse_args()
    trees = [(label, Path(src)) for label, _, src in (tree.partition("=") for tree in args.trees)]
    timings: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in trees}
    with tempfile.NamedTemporaryFile(suffix=".json") as empty:
        for _ in range(args.starts):
            for label, source in trees:
                timings[label].append(one_start(source, Path(empty.name)))
    print("| tree | wall s (median) | CPU s (median) | starts |")
    print("| --- | ---: | ---: | ---: |")
    for label, runs in timings.items():
        wall = median([wall_s for wall_s, _ in runs])
        cpu = median([cpu_s for _, cpu_s in runs])
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {len(runs)} |")


if __name__ == "__main__":
    main()
