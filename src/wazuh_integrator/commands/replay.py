"""``wazuh-integrator replay FILE...``: alerts already written, sent again
through chosen integrations (a backfill after an outage, a new receiver).

The lines go through the same filters and the same deliverers as the
daemon's (quick retries, rate limits, parking, dead letters), in this
process, beside a running daemon. It never reads or moves the live
checkpoint; what it parks is left for the daemon, which alone retries the
parked table.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from wazuh_integrator.commands import Command, GlobalOptions
from wazuh_integrator.commands.run import iso_time, past_time

if TYPE_CHECKING:
    from wazuh_integrator.config.models import IntegrationBlock
    from wazuh_integrator.pipeline import Pipeline
    from wazuh_integrator.source import Line
    from wazuh_integrator.source.archive import TimeWindow

__all__ = ["COMMAND"]

EXIT_USAGE = 2


@dataclass
class FileTally:
    path: Path
    lines: int = 0
    in_window: int = 0
    error: str | None = None


@dataclass
class Reading:
    """The files, read in turn; what each held; a progress display."""

    paths: list[Path]
    window: TimeWindow
    progress: Progress
    max_line_bytes: int
    tallies: list[FileTally] = field(default_factory=list)

    def batches(self) -> Iterator[list[Line]]:
        from wazuh_integrator.source.archive import ArchiveError, alert_time, read_lines

        for path in self.paths:
            tally = FileTally(path)
            self.tallies.append(tally)
            self.progress.start_file(path)
            try:
                for batch in read_lines(
                    path, max_line_bytes=self.max_line_bytes, on_read=self.progress.advance
                ):
                    tally.lines += len(batch)
                    kept = [line for line in batch if self.window.holds(alert_time(line.data))]
                    tally.in_window += len(kept)
                    if kept:
                        yield kept
            except ArchiveError as exc:
                # What was read before stays sent; the other files are still read.
                tally.error = str(exc)
            self.progress.end_file(tally)


class Progress:
    """A bar on a terminal (tqdm); one plain line per file otherwise."""

    def __init__(self, paths: list[Path], out: TextIO) -> None:
        self._out = out
        self._bar = None
        if out.isatty():
            from tqdm import tqdm

            total = sum(path.stat().st_size for path in paths)
            self._bar = tqdm(total=total, unit="B", unit_scale=True, file=out, leave=False)

    def start_file(self, path: Path) -> None:
        if self._bar is not None:
            self._bar.set_description(path.name)

    def advance(self, disk_bytes: int) -> None:
        if self._bar is not None:
            self._bar.update(disk_bytes)

    def end_file(self, tally: FileTally) -> None:
        line = f"{tally.path}: {tally.lines:,} line(s), {tally.in_window:,} in the time window"
        if tally.error:
            line += f"; STOPPED: {tally.error}"
        if self._bar is not None:
            self._bar.write(line, file=self._out)
        else:
            print(line, file=self._out, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="alert files, .json or .json.gz (logs/alerts/YYYY/Mon/ossec-alerts-DD.json.gz)",
    )
    parser.add_argument(
        "--integration",
        action="append",
        required=True,
        metavar="NAME",
        help="send through this integration: a name (every block of it) or one block"
        " as check-config lists it (slack#0); repeat for more",
    )
    parser.add_argument(
        "--since", type=past_time, metavar="TIME", help="only alerts stamped at or after TIME"
    )
    parser.add_argument(
        "--until", type=iso_time, metavar="TIME", help="only alerts stamped before TIME"
    )


def choose(
    enabled: tuple[IntegrationBlock, ...], wanted: list[str]
) -> tuple[list[IntegrationBlock], list[str]]:
    """The enabled blocks named by ``wanted`` (a name or a key), and the names
    that match none."""
    chosen = [block for block in enabled if block.name in wanted or block.key in wanted]
    unknown = [
        name for name in wanted if not any(name in (block.name, block.key) for block in enabled)
    ]
    return chosen, unknown


def _fail(message: str) -> None:
    print(f"wazuh-integrator: replay: {message}", file=sys.stderr)


def _run(args: argparse.Namespace, options: GlobalOptions) -> int:
    from wazuh_integrator.pipeline import Pipeline, RunOptions, run_until_done
    from wazuh_integrator.routes import LoadedConfiguration, load_configuration
    from wazuh_integrator.source.archive import TimeWindow

    if args.since is not None and args.until is not None and args.since >= args.until:
        _fail("--since must be earlier than --until")
        return EXIT_USAGE
    unreadable = [path for path in args.files if not path.is_file()]
    for path in unreadable:
        _fail(f"{path}: no such file")
    if unreadable:
        return 1
    configuration = load_configuration(options.paths)
    chosen, unknown = choose(configuration.enabled, args.integration)
    if unknown:
        names = ", ".join(block.key for block in configuration.enabled) or "none"
        for name in unknown:
            _fail(f"no enabled integration is named {name!r} (enabled: {names})")
        return EXIT_USAGE
    # The daemon serves the metrics address; a second listener would fail.
    settings = dataclasses.replace(configuration.settings, metrics_address=None)
    progress = Progress(args.files, sys.stderr)
    reading = Reading(
        args.files, TimeWindow(args.since, args.until), progress, settings.max_line_bytes
    )
    pipeline = Pipeline(
        options.paths,
        LoadedConfiguration(tuple(chosen), settings, configuration.registry),
        RunOptions(replay=reading.batches(), debug_level=options.debug),
    )
    try:
        run_until_done(pipeline)
    finally:
        progress.close()
    return _summarize(reading, pipeline, sys.stdout)


def _summarize(reading: Reading, pipeline: Pipeline, out: TextIO) -> int:
    lines = sum(tally.lines for tally in reading.tallies)
    in_window = sum(tally.in_window for tally in reading.tallies)
    out.write(
        f"Replayed {len(reading.tallies)} file(s): {lines:,} line(s),"
        f" {in_window:,} in the time window.\n"
    )
    delivered = parked = dead = failed = 0
    for route in pipeline.routes:
        stats = route.deliverer.stats()
        delivered += stats["delivered_total"]
        parked += stats["parked_total"]
        dead += stats["dead_lettered_total"]
        failed += stats["failed_total"]
        out.write(
            f"  {route.block.key:<16} {stats['delivered_total']:,} delivered,"
            f" {stats['parked_total']:,} parked, {stats['dead_lettered_total']:,} dead-lettered"
            + (
                f", {stats['failed_total']:,} neither delivered nor stored"
                if stats["failed_total"]
                else ""
            )
            + "\n"
        )
    problems = []
    # A write that failed while storing an outcome counts the delivery as
    # failed (neither delivered nor stored) without a pipeline-level failure.
    write_failure = pipeline.state_write_failure or (
        f"{failed:,} deliveries neither delivered nor stored" if failed else None
    )
    if write_failure is not None:
        # No checkpoint reads a replay's alerts again: say what to do.
        problems.append(
            f"the state database could not be written ({write_failure}):"
            " what was counted parked or dead-lettered may not be stored; free the disk and"
            " replay the same files and window again (what was delivered may be sent twice)"
        )
    unread = [tally for tally in reading.tallies if tally.error]
    if unread:
        problems.append(f"{len(unread)} file(s) not read to the end (see above)")
    if parked:
        problems.append(f"{parked:,} parked (the running daemon retries them)")
    if dead:
        problems.append(f"{dead:,} dead-lettered (wazuh-integrator dead-letter list)")
    if pipeline.stopped:
        problems.append("interrupted before the end")
    if problems:
        out.write(f"Result: NOT OK: {'; '.join(problems)}.\n")
        return 1
    if not in_window:
        # A window that takes nothing is a mistaken date far more often than
        # a wish to send nothing: not an "OK" a script would take as done.
        out.write(
            f"Result: NOTHING SENT: none of the {lines:,} line(s) read is in the time window;"
            " check --since and --until.\n"
        )
        return 1
    out.write(f"Result: OK: {delivered:,} delivered, none failed.\n")
    return 0


COMMAND = Command(
    name="replay",
    help="send alerts from alert files (.json, .json.gz) again through chosen integrations",
    # Not the module docstring's first paragraph: its ``markup`` showed as is in --help.
    description=(
        "Send alerts already written (alert files, .json or .json.gz) again through"
        " chosen integrations: a backfill after an outage, or a new receiver. The"
        " daemon's checkpoint is neither read nor moved."
    ),
    add_arguments=_add_arguments,
    run=_run,
)
