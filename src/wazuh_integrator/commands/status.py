"""``wazuh-integrator status``: one screen on how the daemon is doing.

Two sources: the state store (checkpoint, parked deliveries, dead letters),
which is there whether the daemon runs or not, and the running daemon's
``/health`` on ``metrics_address`` (counts since it started, circuits, the
last error of each integration, rate-limit waits, the lookup cache). When
the daemon does not answer, the screen says so and shows the store alone.

Exit status: 0 when the daemon answers and is healthy, 1 when it does not
answer or reports a problem (degraded, stopping), so that a script can tell.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.config.models import ClusterSettings

__all__ = ["COMMAND", "StatusReport", "gather_status"]

HEALTH_TIMEOUT_S = 3.0
_LAG_CHUNK_BYTES = 1 << 20


@dataclass
class StatusReport:
    """Everything ``status`` shows, as plain data (``--json`` prints it as is)."""

    state_database: str
    checkpoint: dict[str, Any] | None
    lag: dict[str, Any] | None
    daemon: dict[str, Any]
    integrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # With a [cluster] table: where the parked counts come from (Redis), or why not.
    parked_note: str | None = None
    # integrator.toml could not be used: the defaults stood in (state_dir,
    # metrics_address), which need not be the daemon's.
    settings_errors: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return (
            bool(self.daemon.get("running"))
            and self.daemon.get("status") == "running"
            and not self.settings_errors
        )


def _count_lines(path: Path, offset: int) -> int:
    """Complete lines (alerts) in ``path`` after ``offset``, read in chunks."""
    lines = 0
    with path.open("rb") as source:
        source.seek(offset)
        while chunk := source.read(_LAG_CHUNK_BYTES):
            lines += chunk.count(b"\n")
    return lines


def _lag(alerts: Path, checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """How far the checkpoint trails the end of alerts.json."""
    try:
        stat = alerts.stat()
    except OSError as exc:
        return {"error": f"{alerts}: {exc.strerror or exc}"}
    same_file = checkpoint is not None and (
        (checkpoint["device"], checkpoint["inode"]) == (stat.st_dev, stat.st_ino)
    )
    offset = checkpoint["offset"] if same_file and checkpoint is not None else 0
    offset = min(offset, stat.st_size)
    return {
        "bytes": stat.st_size - offset,
        "alerts": _count_lines(alerts, offset),
        # A checkpoint in a rotated file: the rest of that file is behind too.
        "rotated": checkpoint is not None and not same_file,
    }


def _health(address: str | None) -> dict[str, Any]:
    if address is None:
        return {
            "running": None,
            "address": None,
            "note": "metrics_address is not set in integrator.toml: the daemon cannot be asked",
        }
    # Here, not at the top: every command module is imported for --help and run.
    import urllib.error
    import urllib.request

    host, _, port = address.rpartition(":")
    url = f"http://{host or '127.0.0.1'}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as answer:
            report = json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503 while stopping: still an answer
        try:
            report = json.loads(exc.read())
        except ValueError:
            report = {"status": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError):
            # Not "not running": on loopback a time-out means a process holds
            # the port but does not answer (stopped, or its event loop blocked).
            return {
                "running": False,
                "hung": True,
                "address": address,
                "note": (
                    f"no answer on {address} within {HEALTH_TIMEOUT_S:g} s:"
                    " the daemon may be hung or overloaded"
                ),
            }
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror  # "Connection refused", without "[Errno 111]"
        return {
            "running": False,
            "address": address,
            "note": f"no answer on {address} ({reason})",
        }
    return {"running": True, "address": address, **report}


def gather_status(options: GlobalOptions) -> StatusReport:
    from wazuh_integrator.config.loading import inspect_configuration
    from wazuh_integrator.store import StateStore

    paths = options.paths
    report = inspect_configuration(paths)
    settings = report.settings
    database = settings.state_database(paths.home)
    checkpoint: dict[str, Any] | None = None
    integrations: dict[str, dict[str, Any]] = {
        block.key: {} for block in sorted(report.enabled, key=lambda block: block.index)
    }
    if database.exists():
        with StateStore.open_readonly(database) as store:
            saved = store.load_checkpoint()
            if saved is not None:
                checkpoint = {
                    "path": saved.path,
                    "offset": saved.offset,
                    "device": saved.device,
                    "inode": saved.inode,
                }
            parked, dead = store.parked_counts(), store.dead_letter_counts()
            dead_errors = store.newest_dead_letter_errors()
        for key in sorted({*parked, *dead} - set(integrations)):
            integrations[key] = {}
        for key, row in integrations.items():
            row["parked"] = parked.get(key, 0)
            row["dead_letters"] = dead.get(key, 0)
            if key in dead_errors:
                # The daemon's own last error, when it answers, is newer or the same.
                row["last_error_at"], row["last_error"] = dead_errors[key]
    parked_note = None
    if settings.cluster is not None:
        cluster_parked, parked_note = _cluster_parked(settings.cluster)
        for key, count in cluster_parked.items():
            row = integrations.setdefault(key, {"dead_letters": 0})
            row["parked"] = row.get("parked", 0) + count
    settings_errors = [
        str(issue) for issue in report.other_errors if issue.path == report.settings_shown
    ]
    daemon = _health(settings.metrics_address)
    if settings_errors and settings.metrics_address is None:
        daemon["note"] = (
            f"{report.settings_shown} cannot be used (see the errors on stderr):"
            " the daemon's metrics_address is not known"
        )
    for key, live in (daemon.get("integrations") or {}).items():
        row = integrations.setdefault(key, {})
        # The store is the truth for what it holds; the daemon for the rest.
        row.update({name: value for name, value in live.items() if name not in row})
        if live.get("last_error"):
            row["last_error"], row["last_error_at"] = live["last_error"], live["last_error_at"]
    lag = _lag(paths.alerts, checkpoint) if checkpoint is not None or database.exists() else None
    return StatusReport(
        str(database), checkpoint, lag, daemon, integrations, parked_note, settings_errors
    )


def _cluster_parked(cluster: ClusterSettings) -> tuple[dict[str, int], str]:
    """The cluster's parked deliveries per block (in Redis), and a line saying so."""
    try:
        from wazuh_integrator.cluster.connection import shown_url
        from wazuh_integrator.cluster.parked import cluster_parked_counts
    except ImportError as error:
        return {}, f"the cluster's are not counted: redis-py is missing ({error.name})"
    where = shown_url(cluster)
    try:
        counts = cluster_parked_counts(cluster)
    except Exception as error:  # redis-py's errors, OSError: the screen says why
        return {}, f"the cluster's are not counted: Redis at {where}: {error}"
    return counts, f"the cluster's, in Redis at {where}, with this node's state store"


def _cell(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "-" if value is None else str(value)


def _failed(row: dict[str, Any]) -> str:
    if "attempts_total" not in row:
        return "-"
    return str(row["attempts_total"] - row.get("delivered_total", 0))


def _circuit(row: dict[str, Any]) -> str:
    if "circuit_open" not in row:
        return "-"
    return "OPEN" if row["circuit_open"] else "closed"


def _cache(row: dict[str, Any]) -> str:
    hits, misses = row.get("cache_hits_total"), row.get("cache_misses_total")
    if hits is None or misses is None:
        return "-"
    total = hits + misses
    return f"{hits / total:.0%} of {total}" if total else "0 lookups"


def _uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


_HEADER = ("INTEGRATION", "DELIVERED", "FAILED", "PARKED", "DEAD", "CIRCUIT", "RL WAITS", "CACHE")


def write_status(status: StatusReport, out: TextIO) -> None:
    daemon = status.daemon
    if daemon.get("running"):
        problems = daemon.get("problems") or []
        line = f"{daemon.get('status')} on {daemon['address']}"
        if "uptime_s" in daemon:
            line += f", up {_uptime(float(daemon['uptime_s']))}"
        out.write(f"Daemon      {line}\n")
        for problem in problems:
            out.write(f"            problem: {problem}\n")
    else:
        if daemon.get("hung"):
            verdict = "NOT ANSWERING"
        elif daemon.get("running") is False:
            verdict = "NOT RUNNING"
        else:
            verdict = "UNKNOWN"
        out.write(f"Daemon      {verdict}: {daemon['note']}\n")
        out.write("            (the figures below come from the state store only)\n")
    out.write(f"State       {status.state_database}\n")
    checkpoint = status.checkpoint
    if checkpoint is None:
        out.write("Checkpoint  none yet (the daemon has not run with this state)\n")
    else:
        out.write(f"Checkpoint  {checkpoint['path']} offset {checkpoint['offset']}\n")
    lag = status.lag
    if lag is not None:
        if "error" in lag:
            out.write(f"Lag         unknown: {lag['error']}\n")
        else:
            rotated = " (and the rest of the rotated file)" if lag["rotated"] else ""
            out.write(f"Lag         {lag['bytes']} bytes, {lag['alerts']} alerts{rotated}\n")
    if status.parked_note is not None:
        out.write(f"Parked      {status.parked_note}\n")
    out.write("\n")
    header = (
        "INTEGRATION",
        "DELIVERED",
        "FAILED",
        "PARKED",
        "DEAD",
        "CIRCUIT",
        "RL WAITS",
        "CACHE",
    )
    rows = [
        (
            key,
            _cell(row, "delivered_total"),
            _failed(row),
            _cell(row, "parked"),
            _cell(row, "dead_letters"),
            _circuit(row),
            _cell(row, "rate_limited_total"),
            _cache(row),
        )
        for key, row in status.integrations.items()
    ]
    if not rows:
        out.write("No integration configured or seen in the state store.\n")
        return
    widths = [max(len(line[i]) for line in (header, *rows)) for i in range(len(header))]
    for cells in (header, *rows):
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        out.write("  ".join(padded).rstrip() + "\n")
    errors = [
        (key, row["last_error"], row.get("last_error_at"))
        for key, row in status.integrations.items()
        if row.get("last_error")
    ]
    if errors:
        out.write("\nLast errors\n")
        for key, text, at in errors:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "?"
            out.write(f"  {key}  {when}  {text}\n")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the whole report as one JSON object")


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.secret import redact_urls_in

    status = gather_status(options)
    for error in status.settings_errors:
        print(f"wazuh-integrator: status: {error}", file=sys.stderr)
    if status.settings_errors:
        print(
            "wazuh-integrator: status: the default settings stand in for it (state_dir,"
            " metrics_address): the figures may not be the daemon's",
            file=sys.stderr,
        )
    if args.json:
        document = {
            "state_database": status.state_database,
            "checkpoint": status.checkpoint,
            "lag": status.lag,
            "daemon": {k: v for k, v in status.daemon.items() if k != "integrations"},
            "integrations": status.integrations,
            **({"parked_note": status.parked_note} if status.parked_note else {}),
            **({"settings_errors": status.settings_errors} if status.settings_errors else {}),
        }
        sys.stdout.write(redact_urls_in(json.dumps(document, default=str)) + "\n")
    else:
        screen = io.StringIO()
        write_status(status, screen)
        sys.stdout.write(redact_urls_in(screen.getvalue()))
    return 0 if status.healthy else 1


COMMAND = Command(
    name="status",
    help="the daemon at a glance: checkpoint, lag, deliveries, circuits, last errors",
    add_arguments=_add_arguments,
    run=_run,
)
