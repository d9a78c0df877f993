"""Wiring: alerts.json → decode → route → deliver, with a low-watermark checkpoint.

The pipeline owns the lifetimes (HTTP session, analysisd socket, state store,
one :class:`~wazuh_integrator.delivery.Deliverer` per enabled block) and the
order of shutdown; the parts it wires know nothing of each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from wazuh_integrator import compat
from wazuh_integrator.analysisd import AnalysisdSocket
from wazuh_integrator.catchup import catch_up_since
from wazuh_integrator.config.loading import ConfigurationReport
from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
from wazuh_integrator.decode import AlertDecodeError, AlertTooDeepError, decode_alert
from wazuh_integrator.delivery import Deliverer, Delivery
from wazuh_integrator.delivery.intake import IntakeGroup
from wazuh_integrator.delivery.parked_rows import ParkedRows
from wazuh_integrator.filters import compile_filter
from wazuh_integrator.floods import DigestSubmit, FloodCounters, Mark, Shaper
from wazuh_integrator.gc_tuning import tuned_for_the_daemon
from wazuh_integrator.integrations.base import IntegrationContext, LookupCache
from wazuh_integrator.integrations.sessions import HttpSessions
from wazuh_integrator.integrations.transport import processes_for
from wazuh_integrator.metrics import INVALID_REASONS, Metrics, serve_metrics
from wazuh_integrator.ratelimit import SharedLimitsFactory, SharedPauseFactory
from wazuh_integrator.reload import Reloader
from wazuh_integrator.routes import LoadedConfiguration, Route, load_configuration
from wazuh_integrator.routing import Router
from wazuh_integrator.run_summary import IntegrationSummary, RunSummary
from wazuh_integrator.sdnotify import notify, watchdog_interval_s, watchdog_loop
from wazuh_integrator.source import AlertTailer, FileId, Line, Position
from wazuh_integrator.source.fingerprint import HEAD_BYTES, head_fingerprint
from wazuh_integrator.source.opening import open_regular
from wazuh_integrator.statedir import prepare_state_dir
from wazuh_integrator.store import Checkpoint, StateStore, StoreError
from wazuh_integrator.watermark import Watermark

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.2
READER_STUCK_S = 60.0


@dataclass(frozen=True)
class RunOptions:
    """How ``run`` was asked to behave, from the command line."""

    once: bool = False
    from_start: bool = False
    alerts_path: Path | None = None
    debug_level: int = 0
    # With no checkpoint yet: start at the first alert stamped at or after this.
    since: datetime | None = None
    # ``replay``: deliver these lines instead of following alerts.json, then
    # exit; the checkpoint is neither read nor written.
    replay: Iterable[list[Line]] | None = None


def _mark_of(position: Position) -> Mark:
    # Once per line a floods stage sees: tuple.__new__ builds the named tuple
    # without the Python-level __new__ it generates (half the time).
    file_id = position.file_id
    return tuple.__new__(Mark, (file_id.device, file_id.inode, position.offset))


def _checkpoint_of(position: Position, head: str | None = None) -> Checkpoint:
    return Checkpoint(
        device=position.file_id.device,
        inode=position.file_id.inode,
        offset=position.offset,
        path=position.path,
        head=head,
    )


class _HeadFingerprints:
    """The first-bytes fingerprint of each file a checkpoint names, computed
    once a file has :data:`HEAD_BYTES` (until then, at each save)."""

    def __init__(self) -> None:
        self._known: dict[FileId, str] = {}

    def of(self, position: Position) -> str | None:
        known = self._known.get(position.file_id)
        if known is not None:
            return known
        try:
            fd, status = open_regular(position.path)
        except OSError:
            return None
        try:
            if FileId.of(status) != position.file_id:
                return None  # rotated away under that name: no fingerprint, no check
            fingerprint = head_fingerprint(fd, position.offset)
        finally:
            os.close(fd)
        if fingerprint is not None and position.offset >= HEAD_BYTES:
            self._known = {position.file_id: fingerprint}
        return fingerprint


def _position_of(checkpoint: Checkpoint) -> Position:
    return Position(FileId(checkpoint.device, checkpoint.inode), checkpoint.offset, checkpoint.path)


class Pipeline:
    """The daemon: reads, routes and delivers until stopped (or, with
    ``once``, until the file's end is reached and every delivery settled)."""

    def __init__(self, paths: WazuhPaths, configuration: LoadedConfiguration, options: RunOptions):
        self.paths = paths
        self.configuration = configuration
        self.options = options
        self.state_dir = configuration.settings.resolved_state_dir(paths.home)
        self.metrics = Metrics()
        self.routes = []
        self._stop = asyncio.Event()
        self._reload_requested = False
        # Bound here, so that a subclass's way of building and starting routes is the one used.
        self._reloader = Reloader(
            paths, self.metrics, build_route=self._build_route, start_route=self._start_route
        )
        self._started_at = time.time()
        self._watermark: Watermark[Position] = Watermark(None)
        self._last_checkpoint_save = 0.0
        # Where the floods stage's state was last saved in full (the
        # checkpoint may not pass it), and the checkpoint last written.
        self._floods_cover: Position | None = None
        self._written: Position | None = None
        self._state_error: str | None = None
        self.state_write_failure: str | None = None
        """The first failed write of the state database, kept: a replay, which
        has no checkpoint to read its alerts again from, reports it."""
        self._heads = _HeadFingerprints()
        self.replayed_lines = 0
        # Where the reader is, and when it last moved: /health calls a reader
        # that leaves unread bytes behind for READER_STUCK_S "stuck".
        self._read_end: Position | None = None
        self._read_progress_at = time.monotonic()
        # Set in run(); the pipeline is single-use.
        self._store: StateStore | None = None
        self._sessions: HttpSessions | None = None
        self._events: AnalysisdSocket | None = None
        # Cluster workers set this so that rate limits hold across every worker.
        self._shared_limits: SharedLimitsFactory | None = None
        # ... and this, so that lookups are cached once for all of them.
        self._lookup_cache: LookupCache | None = None
        # ... and these, so that any worker retries a parked delivery, and a
        # receiver's 429 pauses all of them (None: the state store, in process).
        self._parked_rows: ParkedRows | None = None
        self._shared_pause: SharedPauseFactory | None = None
        # Every deliverer's intake, so that a full queue holds the reader
        # rather than overflow while the other integrations have work.
        self._intakes = IntakeGroup()

    @property
    def routes(self) -> list[Route]:
        """The enabled blocks, in ossec.conf's order. Assign a new list to
        change them (never change the list in place): the router is rebuilt
        with it."""
        return self._routes

    @routes.setter
    def routes(self, routes: list[Route]) -> None:
        self._routes = routes
        # What the old filters decided holds nothing for the new ones.
        self._router = Router(routes, [route.alert_filter for route in routes])

    # -- lifecycle -------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """Whether a signal asked it to stop (rather than it running out of work)."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("Stopping: finishing in-flight deliveries.")
            notify("STOPPING=1")
        self._stop.set()

    def _start_watchdog(self) -> asyncio.Task[None] | None:
        interval_s = watchdog_interval_s()
        if interval_s is None:
            return None
        return asyncio.create_task(watchdog_loop(interval_s), name="systemd watchdog")

    def request_reload(self) -> None:
        self._reload_requested = True

    async def run(self) -> int:
        settings = self.configuration.settings
        prepare_state_dir(self.state_dir)
        store = StateStore(settings.state_database(self.paths.home))
        self._store = store
        metrics_runner = None
        try:
            async with HttpSessions(processes_for(settings.http_processes)) as sessions:
                self._sessions = sessions
                self._events = AnalysisdSocket(self.paths.analysisd_socket)
                self.routes = self._build_routes(self.configuration)
                if not self.routes:
                    log.warning("No integration is enabled: alerts are read but go nowhere.")
                if settings.metrics_address:
                    # Before any delivery starts: a port taken stops the start
                    # with nothing yet running to stop.
                    host, _, port = settings.metrics_address.rpartition(":")
                    metrics_runner = await serve_metrics(
                        self.metrics, host.strip("[]") or "127.0.0.1", int(port), self.health
                    )
                for route in self.routes:
                    await self._start_route(route)
                self._seed_state_gauges(store)
                self._install_signal_handlers()
                self.metrics.up.set(1)
                if self.options.replay is not None:
                    await self._replay(self.options.replay)
                else:
                    await self._follow(store)
                await self._shutdown(settings.grace_period_s)
                self.metrics.up.set(0)
                if self.options.once:
                    summary = self._summary(store)
                    summary.write(sys.stdout)
                    return summary.exit_status()
        finally:
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            if self._events is not None:
                self._events.close()
            self._remove_signal_handlers()
            try:
                store.close()
            except (sqlite3.Error, StoreError) as exc:
                self._state_write_failed(f"cannot write on closing: {exc}")
        return 0

    def _summary(self, store: StateStore) -> RunSummary:
        invalid = self.metrics.alerts_invalid_total
        configured = {route.block.key for route in self.routes}
        return RunSummary(
            # Oversize lines come in the blocks read, so they are counted there already.
            lines_read=int(self.metrics.alerts_read_total.value),
            invalid=int(sum(invalid.labels(reason=r).value for r in INVALID_REASONS)),
            integrations=[
                IntegrationSummary(
                    key=route.block.key,
                    delivered=stats["delivered_total"],
                    parked=stats["parked_total"],
                    dead_lettered=stats["dead_lettered_total"],
                    failed=stats["failed_total"],
                    still_parked=store.count_parked(route.block.key),
                )
                for route in self.routes
                for stats in [route.deliverer.stats()]
            ],
            unconfigured_parked={
                key: count for key, count in store.parked_counts().items() if key not in configured
            },
        )

    async def _follow(self, store: StateStore) -> None:
        watchdog = self._start_watchdog()
        notify("READY=1", f"STATUS=Delivering to {len(self.routes)} integration(s).")
        try:
            await self._read_until_stopped(store)
        finally:
            if watchdog is not None:
                watchdog.cancel()

    async def _replay(self, batches: Iterable[list[Line]]) -> None:
        """Route ``batches`` like alerts.json's lines, then let every delivery settle."""
        for batch in batches:
            for line in batch:
                await self._route_line(line)
            self.replayed_lines += len(batch)
            await asyncio.sleep(0)  # let deliveries and signals run between reads
            if self._stop.is_set():
                break

    def _seed_state_gauges(self, store: StateStore) -> None:
        """Start the parked and dead-letter gauges from what the store holds."""
        parked, dead = store.parked_counts(), store.dead_letter_counts()
        for route in self.routes:
            key = route.block.key
            self.metrics.parked.labels(integration=key).set(parked.get(key, 0))
            self.metrics.dead_letters.labels(integration=key).set(dead.get(key, 0))

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def _remove_signal_handlers(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)

    async def _start_route(self, route: Route) -> None:
        await route.deliverer.start()
        if route.shaper is not None:
            route.shaper.start(self._digest_submitter(route))

    @staticmethod
    def _digest_submitter(route: Route) -> DigestSubmit:
        async def submit(document: dict[str, Any], raw: bytes, settled: Callable[[], None]) -> None:
            await route.deliverer.submit(Delivery(alert=document, raw=raw, on_settled=settled))

        return submit

    async def _shutdown(self, grace_s: float) -> None:
        replay = self.options.replay is not None
        if (self.options.once or replay) and not self._stop.is_set():
            for route in self.routes:
                if route.shaper is not None:
                    await route.shaper.send_all(self._digest_submitter(route))
            for route in self.routes:
                await route.deliverer.join()
            if not replay:  # the daemon's deliverers alone retry the parked table
                await self._settle_due_parked()
        for route in self.routes:
            if route.shaper is not None:
                await route.shaper.stop()
        self._keep_state_file()
        stopped = await asyncio.gather(
            *(route.deliverer.stop(grace_s) for route in self.routes), return_exceptions=True
        )
        for route, outcome in zip(self.routes, stopped, strict=True):
            if isinstance(outcome, sqlite3.Error | StoreError):
                # Parking what was left failed (a full disk): those alerts are
                # behind the checkpoint and are read again at the next start.
                self._state_write_failed(f"cannot park what {route.block.key} had left: {outcome}")
            elif isinstance(outcome, BaseException):
                raise outcome
        for route in self.routes:
            await route.integration.close()
        if replay:
            return  # the live checkpoint is the daemon's
        self._save_checkpoint(force=True)
        position = self._watermark.position
        if position is not None and self._state_error is None:
            log.info("Checkpoint saved at %s offset %d.", position.path, position.offset)

    async def _settle_due_parked(self) -> None:
        """With ``--once``, give what was already due in the parked table (a
        ``dead-letter replay``, an earlier run's failures) its attempt before
        exiting. Deliveries that fail again are rescheduled into the future,
        so this ends; an integration whose receiver is down (circuit open) is
        not waited for."""
        store = self._store
        assert store is not None
        started_at = time.time()

        def waiting() -> bool:
            for route in self.routes:
                if route.deliverer.stats()["circuit_open"]:
                    continue
                due_at = store.next_parked_due_at(route.block.key)
                if due_at is not None and due_at <= started_at:
                    return True
            return False

        # The parked table lives in SQLite, where no event can be awaited: poll.
        while waiting() and not self._stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for route in self.routes:
            await route.deliverer.join()

    # -- routes ----------------------------------------------------------

    def _build_routes(self, configuration: LoadedConfiguration) -> list[Route]:
        built = (self._build_route(block, configuration) for block in configuration.enabled)
        return [route for route in built if route is not None]

    def _build_route(
        self, block: IntegrationBlock, configuration: LoadedConfiguration
    ) -> Route | None:
        assert self._store is not None
        cls = configuration.registry.resolve(block.name)
        if cls is None:  # resolve_integrations already disabled it
            return None
        integration_settings = configuration.settings.for_block(block)
        context = IntegrationContext(
            home=self.paths.home,
            state_dir=self.state_dir,
            settings=integration_settings,
            debug=self.options.debug_level > 0,
            http=(
                self._sessions.for_settings(integration_settings)
                if self._sessions is not None and cls.uses_http
                else None
            ),
            events=self._events,
            cache=self._lookup_cache if self._lookup_cache is not None else self._store,
        )
        integration = cls(block, context)
        self.metrics.register_integration(block.key)
        deliverer = Deliverer(
            integration,
            key=block.key,
            settings=integration_settings,
            store=self._store,
            metrics=self.metrics,
            retry_parked=self.options.replay is None,
            shared_limits=self._shared_limits,
            parked_rows=self._parked_rows,
            shared_pause=self._shared_pause,
            intake_group=self._intakes,
        )
        matched_total = self.metrics.alerts_matched_total.labels(integration=block.key)
        shaper = None
        # A replay sends what it is given: the throttle and digest windows in
        # the store are the running daemon's.
        if integration_settings.shapes_alerts and self.options.replay is None:
            shaper = Shaper(
                block.key,
                integration_settings,
                store=self._store,
                counters=FloodCounters(
                    excluded=self.metrics.alerts_excluded_total.labels(integration=block.key),
                    suppressed=self.metrics.alerts_suppressed_total.labels(integration=block.key),
                    digested=self.metrics.alerts_digested_total.labels(integration=block.key),
                    digests=self.metrics.digests_total.labels(integration=block.key),
                ),
            )
        log.info("Enabling integration for: '%s'.", block.name)
        return Route(block, compile_filter(block), integration, deliverer, matched_total, shaper)

    async def _reload(self) -> None:
        """Apply ossec.conf and integrator.toml as they are now (see :mod:`reload`)."""
        self._reload_requested = False
        await self._reloader.reload(self)

    # -- reading ---------------------------------------------------------

    @property
    def _alerts_path(self) -> Path:
        return self.options.alerts_path or self.paths.alerts

    def _open_tailer(self, store: StateStore, since_start: Position | None) -> AlertTailer:
        alerts_path = self._alerts_path
        checkpoint = store.load_checkpoint()
        start = _position_of(checkpoint) if checkpoint is not None else since_start
        from_start = self.options.from_start or self.options.once
        tailer = AlertTailer(
            alerts_path,
            start=start,
            start_head=checkpoint.head if checkpoint is not None else None,
            from_start=from_start,
            max_line_bytes=self.configuration.settings.max_line_bytes,
            follow=not self.options.once,
            watch_changes=self.configuration.settings.follow == "auto",
        )
        initial = tailer.initial_position()
        if tailer.lost_bytes:  # final once the start is resolved
            self.metrics.lost_bytes_total.inc(tailer.lost_bytes)
        self._watermark = Watermark(initial)
        if checkpoint is None and initial is not None:
            # Saved at once, so that a crash right after a first start skips nothing.
            store.save_checkpoint(_checkpoint_of(initial, self._heads.of(initial)))
            store.flush()
        fresh_start = checkpoint is None and since_start is None and not from_start
        if fresh_start and initial is not None and initial.offset:
            # Right on a first start; after a lost state database, alerts
            # written while stopped are skipped: say so, never silently.
            log.warning(
                "No checkpoint in %s (a first start, or the state database was deleted): "
                "starting at the end of %s (offset %d). Alerts already in it are not "
                "delivered; to deliver them, stop and start once with --from-start.",
                store.path,
                alerts_path,
                initial.offset,
            )
        if checkpoint is not None:
            where = f"the checkpoint (offset {checkpoint.offset})"
        elif initial is None:
            where = "its end"
        elif since_start is not None:
            where = f"offset {initial.offset}, the first alert since {self.options.since}"
        else:
            where = f"offset {initial.offset}"
        log.info("Reading %s from %s.", alerts_path, where)
        return tailer

    async def _read_until_stopped(self, store: StateStore) -> None:
        since_start = None
        since = self.options.since
        if since is not None:
            if store.load_checkpoint() is not None:
                log.warning(
                    "--since %s ignored: a checkpoint exists, and resuming from it loses and "
                    "doubles nothing (to send older alerts again, use `wazuh-integrator replay`).",
                    since.isoformat(),
                )
            else:
                since_start = await self._catch_up_since(since)
                if self._stop.is_set():
                    return
        tailer = self._open_tailer(store, since_start)
        reader = asyncio.create_task(self._read(tailer))
        stopper = asyncio.create_task(self._stop.wait())
        housekeeper = asyncio.create_task(self._housekeeping())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            housekeeper.cancel()
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await tailer.close()

    async def _catch_up_since(self, since: datetime) -> Position | None:
        """The rotated files' alerts from ``since`` on (see :mod:`catchup`)."""
        self._watermark = Watermark(None)  # positions in rotated files: never a checkpoint
        try:
            return await catch_up_since(
                since,
                self._alerts_path,
                max_line_bytes=self.configuration.settings.max_line_bytes,
                route=self._route_caught_up,
                settle=self._settle_routes,
                stop=self._stop,
            )
        finally:
            self._watermark = Watermark(None)

    async def _route_caught_up(self, batch: list[Line]) -> None:
        # Read like alerts.json's lines, so counted like them (the --once summary, the metric).
        self.metrics.alerts_read_total.inc(len(batch))
        await self._route_batch(batch)
        self._read_progress_at = time.monotonic()  # catching up is not being stuck

    async def _settle_routes(self) -> None:
        for route in self.routes:
            await route.deliverer.join()

    async def _read(self, tailer: AlertTailer) -> None:
        read_total = self.metrics.alerts_read_total
        async for batch in tailer.batches():
            read_total.inc(len(batch))  # per block, not per line: the hot path
            await self._route_batch(batch)
            if batch:
                self._read_end = batch[-1].end
                self._read_progress_at = time.monotonic()
            self._save_checkpoint()

    async def _housekeeping(self) -> None:
        """Saves the checkpoint while the reader is idle (deliveries settle
        later than lines are read) and applies a requested reload."""
        last_error: str | None = None
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                if self._reload_requested:
                    await self._reload()
                self._keep_state_file()
                self._save_checkpoint()
                self._measure_lag()
            except Exception as exc:
                # This task carries reloads and idle checkpoint saves: if it
                # died, both would stop without a word. Say what broke (once
                # per distinct error, not every tick); go on.
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:
                    last_error = text
                    log.exception("Housekeeping failed (reloads and checkpoints go on)")
            else:
                last_error = None

    def _measure_lag(self) -> None:
        """How far the checkpoint trails the end of alerts.json, in bytes."""
        position = self._watermark.position
        alerts_path = self.options.alerts_path or self.paths.alerts
        try:
            stat = os.stat(alerts_path)
        except OSError:
            return
        same_file = position is not None and position.file_id == FileId(stat.st_dev, stat.st_ino)
        lag = stat.st_size - position.offset if same_file and position else stat.st_size
        self.metrics.checkpoint_lag_bytes.set(max(lag, 0))

    async def _route_batch(self, batch: list[Line]) -> None:
        """Route every line of ``batch``, in order.

        Most lines match nothing: they are decided without a coroutine each,
        and a run of them moves the watermark once, at its last line, before
        the next await. The watermark is then where routing line by line
        would have left it whenever another task can look at it.
        """
        idle_end: Position | None = None
        routes_for = self._routes_for
        for line in batch:
            matched = routes_for(line)
            if not matched:
                idle_end = line.end
                continue
            if idle_end is not None:
                self._watermark.line_without_work(idle_end)
                idle_end = None
            await self._deliver(matched, line)
        if idle_end is not None:
            self._watermark.line_without_work(idle_end)

    async def _route_line(self, line: Line) -> None:
        matched = self._routes_for(line)
        if matched:
            await self._deliver(matched, line)
        else:
            self._watermark.line_without_work(line.end)

    def _routes_for(self, line: Line) -> tuple[Route, ...]:
        """The routes that take ``line``; none for a line that is skipped,
        which is logged and counted here."""
        if line.oversize:
            log.warning(
                "Skipping a line longer than %d bytes at %s offset %d.",
                self.configuration.settings.max_line_bytes,
                line.start.path,
                line.start.offset,
            )
            self.metrics.alerts_invalid_total.labels(reason="oversize").inc()
            return ()
        try:
            # Looked up on each line: a reload during a delivery's await
            # replaces the router.
            matched = self._router.routes_for(line.data)
        except AlertDecodeError as exc:
            self._skip_invalid(line, exc)
            return ()
        if matched is None:
            log.warning(
                "Skipping an alert without a rule object at %s offset %d.",
                line.start.path,
                line.start.offset,
            )
            self.metrics.alerts_invalid_total.labels(reason="no_rule").inc()
            return ()
        return matched

    async def _deliver(self, matched: tuple[Route, ...], line: Line) -> None:
        """Hand a matched line to its routes' deliverers (after the floods stage)."""
        watermark = self._watermark
        try:
            alert = decode_alert(line.data)
        except AlertDecodeError as exc:  # valid for the fast decoder, not for the full one
            self._skip_invalid(line, exc)
            watermark.line_without_work(line.end)
            return
        deliveries = self._shape(matched, alert, line)
        if not deliveries:
            watermark.line_without_work(line.end)
            return
        settle = watermark.line_with_work(line.end, len(deliveries))
        for route, body, raw in deliveries:
            delivery = Delivery(alert=body, raw=raw, on_settled=settle)
            if not route.deliverer.offer(delivery):
                await route.deliverer.submit(delivery)

    @staticmethod
    def _shape(
        matched: Sequence[Route], alert: dict[str, Any], line: Line
    ) -> list[tuple[Route, dict[str, Any], bytes]]:
        """The floods stage: what each matched block delivers now."""
        deliveries = []
        mark: Mark | None = None
        for route in matched:
            route.matched_total.inc()
            if route.shaper is None:
                deliveries.append((route, alert, line.data))
                continue
            if mark is None:
                mark = _mark_of(line.end)
            shaped = route.shaper.shape(alert, line.data, mark)
            if shaped.alert is not None and shaped.raw is not None:
                deliveries.append((route, shaped.alert, shaped.raw))
        return deliveries

    def _skip_invalid(self, line: Line, error: AlertDecodeError) -> None:
        too_deep = isinstance(error, AlertTooDeepError)
        log.warning(
            "Skipping a line that is %s at %s offset %d: %s",
            "nested too deeply" if too_deep else "not a JSON object",
            line.start.path,
            line.start.offset,
            error,
        )
        reason = "too_deep" if too_deep else "not_json"
        self.metrics.alerts_invalid_total.labels(reason=reason).inc()

    def _keep_state_file(self) -> None:
        """Notice a state database deleted (or replaced) under us, and restore it."""
        store = self._store
        if store is None:
            return
        try:
            restored = store.restore_if_gone()
        except (OSError, sqlite3.Error, StoreError) as exc:
            self._state_write_failed(f"the state database is gone and cannot be recreated: {exc}")
            return
        if restored is not None:
            position = self._watermark.position
            log.error(
                "STATE DATABASE LOST: %s. Checkpoint (offset %s), parked deliveries and dead "
                "letters were kept. Find out what removed it.",
                restored,
                "none yet" if position is None else position.offset,
            )
            self._save_checkpoint(force=True)

    def _save_checkpoint(self, *, force: bool = False) -> None:
        store = self._store
        position = self._watermark.position
        if store is None or position is None:
            return
        now = time.monotonic()
        if not force and now - self._last_checkpoint_save < CHECKPOINT_INTERVAL_S:
            return
        self._last_checkpoint_save = now
        try:
            # Flood windows first: a saved checkpoint must never be ahead of
            # them. A throttle with many changed windows may put its save off
            # (Throttle.persist): the checkpoint then goes no further than
            # where the last complete save left it.
            held = False
            for route in self.routes:
                if route.shaper is not None and not route.shaper.persist(force=force):
                    held = True
            if not held:
                self._floods_cover = position
                if self._watermark.advanced or force:
                    self._write_checkpoint(store, position)
                    self._watermark.advanced = False
            elif self._floods_cover is not None and self._floods_cover != self._written:
                self._write_checkpoint(store, self._floods_cover)  # the rest stays "advanced"
            if force:
                store.flush()
            else:
                store.maybe_commit()
        except (sqlite3.Error, StoreError) as exc:
            # A full disk, most likely. The saved checkpoint stays where it
            # was: the next start reads again from there, so nothing is lost.
            self._watermark.advanced = True
            self._written = None
            self._state_write_failed(f"cannot save the checkpoint: {exc}")
            return
        if self._state_error is not None:
            log.warning("The state database takes writes again.")
            self._state_error = None

    def _write_checkpoint(self, store: StateStore, position: Position) -> None:
        store.save_checkpoint(_checkpoint_of(position, self._heads.of(position)))
        self._written = position

    def _state_write_failed(self, text: str) -> None:
        if self.state_write_failure is None:
            self.state_write_failure = text
        # Logged once per distinct problem, not at every attempt.
        if text != self._state_error and self.options.replay is not None:
            self._state_error = text
            log.error(
                "State database %s: %s. What this replay parked or gave up may not be stored;"
                " its summary says so.",
                self._store.path if self._store is not None else "",
                text,
            )
        elif text != self._state_error:
            self._state_error = text
            log.error(
                "State database %s: %s. Alerts after the last saved checkpoint will be read "
                "again at the next start (some may be delivered twice; none is lost).",
                self._store.path if self._store is not None else "",
                text,
            )

    # -- observability ---------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The /health report: ``degraded`` while a receiver's circuit is open
        or the reader is stuck, with each problem named."""
        position = self._watermark.position
        problems = [
            f"{route.block.key}: circuit open, the receiver keeps failing"
            for route in self.routes
            if route.deliverer.stats()["circuit_open"]
        ]
        stuck_s = self._reader_stuck_s()
        if stuck_s is not None:
            problems.append(f"reader: no progress for {stuck_s:.0f} s with unread alerts")
        status = "degraded" if problems else "running"
        return {
            "status": "stopping" if self._stop.is_set() else status,
            "problems": problems,
            "uptime_s": round(time.time() - self._started_at, 1),
            "checkpoint": None
            if position is None
            else {"path": position.path, "offset": position.offset},
            "lines_in_flight": self._watermark.in_flight_lines,
            "integrations": {
                route.block.key: {**route.deliverer.stats(), **route.integration.stats()}
                for route in self.routes
            },
        }

    def _reader_stuck_s(self) -> float | None:
        """Seconds the reader has not moved although alerts.json holds bytes
        past it, when that is READER_STUCK_S or more; else None."""
        idle_s = time.monotonic() - self._read_progress_at
        if idle_s < READER_STUCK_S:
            return None
        alerts_path = self.options.alerts_path or self.paths.alerts
        try:
            stat = os.stat(alerts_path)
        except OSError:
            return None
        read = self._read_end or self._watermark.position
        if read is None:
            return None
        same_file = read.file_id == FileId(stat.st_dev, stat.st_ino)
        unread = stat.st_size > read.offset if same_file else stat.st_size > 0
        return idle_s if unread else None


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (a dependency except on Windows),
    else None: asyncio's default.

    The daemon is CPU-bound in its one process when alerts come fast, and
    part of that is the event loop and its socket writes, which uvloop does
    in C (bench scenario 2: about a tenth more alerts a second).
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_pipeline(
    paths: WazuhPaths, options: RunOptions, report: ConfigurationReport | None = None
) -> int:
    """Load the configuration (from ``report`` when the files were read already)
    and run until stopped; the ``run`` command."""
    configuration = load_configuration(paths, report)
    return run_until_done(Pipeline(paths, configuration, options))


def run_until_done(pipeline: Pipeline) -> int:
    """Run ``pipeline`` on the daemon's event loop until it stops."""
    with tuned_for_the_daemon():
        return compat.run(pipeline.run(), event_loop_factory())
