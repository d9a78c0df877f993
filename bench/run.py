"""Run every benchmark scenario and write bench/results/latest.{md,json}.

    .venv/bin/python bench/run.py            # full sizes (about 15 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # small sizes, while developing
    .venv/bin/python bench/run.py --only latency,memory --no-profile

Never run by the tests or CI. See bench/README.md.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make ``bench`` importable from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procfs, report
from bench.alerts import write_alerts
from bench.common import Context, Outcome, Sizes
from bench.nginx import nginx_binary
from bench.scenarios import (
    cluster,
    delivery,
    filtering,
    floods,
    isolation,
    latency,
    memory,
    recovery,
    scripts,
    templates,
)

log = logging.getLogger("bench")

SCENARIOS = {
    "filtering": filtering.run,
    "delivery": delivery.run,
    "latency": latency.run,
    "memory": memory.run,
    "isolation": isolation.run,
    "scripts": scripts.run,
    "floods": floods.run,
    "templates": templates.run,
    "cluster": cluster.run,
    "recovery": recovery.run,
}
# Scenarios that need no alerts file prepared in advance (it takes a minute to write).
NO_DATA = {"recovery"}
RESULTS = Path(__file__).resolve().parent / "results"
ANALYSIS = RESULTS / "analysis.md"


def prepare_data(context: Context) -> None:
    """One backlog file shared by scenarios 1 and 4, and its head for scenario 2."""
    sizes = context.sizes
    backlog_count = max(sizes.filter_alerts, sizes.memory_alerts)
    backlog = context.work / "backlog.json"
    started = time.monotonic()
    write_alerts(backlog, backlog_count)
    log.info(
        "wrote %d alerts (%d MB) in %.1fs",
        backlog_count,
        backlog.stat().st_size // 1_000_000,
        time.monotonic() - started,
    )
    context.data["backlog"] = backlog
    for name, count in (
        ("delivery", sizes.delivery_alerts),
        ("isolation", sizes.isolation_alerts),
        ("scripts", sizes.script_alerts),
        ("memory", sizes.memory_alerts),
    ):
        path = context.work / f"{name}.json"
        with backlog.open("rb") as source, path.open("wb") as target:
            for _, line in zip(range(count), source, strict=False):
                target.write(line)
        context.data[name] = path


def compile_package() -> None:
    """Write the daemon's bytecode, as pip does when it installs a wheel.

    An editable install leaves ``src/`` uncompiled, and with
    PYTHONDONTWRITEBYTECODE set every daemon start compiled some fifty
    modules again (about 0.1 s of CPU, which scenario 1 counted).
    """
    spec = importlib.util.find_spec("wazuh_integrator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("wazuh_integrator is not installed in this Python")
    for location in spec.submodule_search_locations:
        if not compileall.compile_dir(location, quiet=1):
            raise RuntimeError(f"could not compile {location}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="where latest.md and latest.json go (default: bench/results)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    sizes = Sizes.quick() if args.quick else Sizes()
    args.output.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wi-bench-data-", dir="/tmp"))
    nginx = nginx_binary()
    if nginx is None:
        log.warning("no nginx: falling back to our own receiver for the fast receiver")
    context = Context(sizes, work, nginx, profile=not args.no_profile, results_dir=args.output)
    compile_package()
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        if set(chosen) - NO_DATA:
            prepare_data(context)
        for name in chosen:
            log.info("scenario %s", name)
            scenario_started = time.monotonic()
            outcomes.append(SCENARIOS[name](context))
            log.info(
                "scenario %s done in %.0fs: %s",
                name,
                time.monotonic() - scenario_started,
                "pass" if outcomes[-1].passed else "MISS",
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed_s = time.monotonic() - started
    machine = procfs.machine()
    report.write_json(args.output / "latest.json", machine, outcomes, args.quick, elapsed_s)
    # The analysis is of the full run in results/, not of a partial run elsewhere.
    full_run = not args.quick and args.output.resolve() == RESULTS
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() and full_run else ""
    report.write_markdown(
        args.output / "latest.md", machine, outcomes, args.quick, elapsed_s, analysis
    )
    print(report.summary_table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
