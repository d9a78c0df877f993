"""``[integrations.<name>.throttle]``: at most ``limit`` alerts per key per window.

A key's window opens with the first alert of that key and lasts ``window_s``;
its first ``limit`` alerts are sent, the rest are counted. The next alert of
the key that is sent, in this window or a later one, carries how many were
suppressed and since when (:class:`~wazuh_integrator.integrations.flood_marks.Suppressed`).

The check is a dict lookup and a few comparisons, in memory; the windows are
written to the state store with the checkpoint (see :meth:`Throttle.persist`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from wazuh_integrator.config.models import ThrottleSettings
from wazuh_integrator.floods.fields import FieldPath, key_function
from wazuh_integrator.floods.marks import Mark
from wazuh_integrator.integrations.flood_marks import Suppressed, iso_time

__all__ = ["Throttle", "ThrottleStore", "Verdict", "format_duration", "ordinal"]

# How often expired windows without suppressed alerts are forgotten.
PRUNE_EVERY_S: Final = 60.0
# A save of more changed windows than this (about a millisecond's worth of
# rows) is put off until PERSIST_AT_LEAST_EVERY_S has passed since the last
# one: many keys at a high rate would otherwise write a row for most alerts.
# The pipeline holds the checkpoint back meanwhile (see Throttle.persist).
PERSIST_ROWS_AT_ONCE: Final = 256
PERSIST_AT_LEAST_EVERY_S: Final = 1.0
# The first member of a window's row (a JSON array); rows of an unknown
# version are not read (that window starts afresh).
_ROW_VERSION: Final = 1


class ThrottleStore(Protocol):
    def load_throttle_windows(self, integration_key: str) -> dict[str, bytes]: ...

    def save_throttle_windows(
        self, integration_key: str, rows: list[tuple[str, bytes]]
    ) -> None: ...

    def delete_throttle_windows(self, integration_key: str, keys: list[str]) -> None: ...


def format_duration(seconds: float) -> str:
    """``3600`` → ``1h``: a duration the way integrator.toml writes it."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Send (with the suppressed note, if any) or not, and why not."""

    send: bool
    note: Suppressed | None = None
    reason: str | None = None


_SEND: Final = Verdict(send=True)


@dataclass(slots=True)
class _SentRun:
    """The lines one window sent: its first ``limit`` alerts, from ``first``
    to ``last``; ``note`` went with the first."""

    first: Mark
    last: Mark
    note: Suppressed | None

    def as_row(self) -> tuple[Any, ...]:
        note = self.note
        # Slicing a Mark gives a plain tuple, which orjson writes as an array.
        return (self.first[:], self.last[:], None if note is None else note.as_json())

    @classmethod
    def from_json(cls, value: list[Any]) -> _SentRun:
        first, last, note = value
        return cls(
            Mark(*first),
            Mark(*last),
            None if note is None else Suppressed(note["count"], note["since"]),
        )


@dataclass(slots=True)
class _Window:
    started_at: float
    seen: int = 0  # alerts of the key in this window, sent or not
    sent: int = 0
    suppressed: int = 0  # since the last send, across windows
    suppressed_since: float | None = None
    through: Mark | None = None  # the last line counted
    runs: list[_SentRun] = field(default_factory=list)  # this window's and the one before

    def dumps(self) -> bytes:
        """The row: a JSON array (an object before, which :meth:`loads` still
        reads). Written for every window an alert touched since the last
        save, so kept to one ``orjson.dumps`` of plain tuples."""
        through = self.through
        return orjson.dumps(
            (
                _ROW_VERSION,
                self.started_at,
                self.seen,
                self.sent,
                self.suppressed,
                self.suppressed_since,
                None if through is None else through[:],
                [run.as_row() for run in self.runs],
            )
        )

    @classmethod
    def loads(cls, data: bytes) -> _Window:
        value = orjson.loads(data)
        if isinstance(value, dict):
            return cls._from_object(value)
        version, started_at, seen, sent, suppressed, since, through, runs = value
        if version != _ROW_VERSION:
            raise ValueError(f"throttle window row version {version}")
        return cls(
            started_at=float(started_at),
            seen=int(seen),
            sent=int(sent),
            suppressed=int(suppressed),
            suppressed_since=since,
            through=Mark(*through) if through else None,
            runs=[_SentRun.from_json(run) for run in runs],
        )

    @classmethod
    def _from_object(cls, value: dict[str, Any]) -> _Window:
        """A row as versions before the array wrote it."""
        through = value.get("through")
        return cls(
            started_at=float(value["started_at"]),
            seen=int(value["seen"]),
            sent=int(value["sent"]),
            suppressed=int(value["suppressed"]),
            suppressed_since=value.get("suppressed_since"),
            through=Mark(*through) if through else None,
            runs=[_SentRun.from_json(run) for run in value.get("runs", [])],
        )


class Throttle:
    """One block's throttle; ``decide`` is called once per alert, in order."""

    def __init__(
        self,
        settings: ThrottleSettings,
        *,
        integration_key: str = "",
        store: ThrottleStore | None = None,
    ) -> None:
        self.settings = settings
        self._key = key_function(tuple(FieldPath(dotted) for dotted in settings.key))
        self._window_s = settings.window_s
        self._limit = settings.limit
        self._integration_key = integration_key
        self._store = store
        self._windows: dict[str, _Window] = {}
        self._dirty: set[str] = set()
        self._pruned_at = float("-inf")
        self._persisted_at = float("-inf")  # time.monotonic()
        self._window_words = format_duration(settings.window_s)
        if store is not None:
            for key, data in store.load_throttle_windows(integration_key).items():
                try:
                    self._windows[key] = _Window.loads(data)
                except (ValueError, KeyError, TypeError):
                    continue  # a row this version cannot read starts afresh

    def decide(self, alert: Mapping[str, Any], now: float, mark: Mark | None = None) -> Verdict:
        # Once per alert of a throttled block: the steps of Mark.at_or_before
        # and of remembering a send are written out here, not called.
        key = self._key(alert)
        windows = self._windows
        window = windows.get(key)
        if window is None:
            window = windows[key] = _Window(started_at=now)
        else:
            through = window.through
            if (
                mark is not None
                and through is not None
                and mark.offset <= through.offset
                and mark.inode == through.inode
                and mark.device == through.device
            ):
                return self._decided_before(window, mark, key)
            if now - window.started_at >= self._window_s:
                window.started_at, window.seen, window.sent = now, 0, 0
        self._dirty.add(key)
        window.seen += 1
        if mark is not None:
            window.through = mark
        if window.sent < self._limit:
            window.sent += 1
            note = None
            if window.suppressed:
                since = window.suppressed_since if window.suppressed_since is not None else now
                note = Suppressed(window.suppressed, iso_time(since))
                window.suppressed, window.suppressed_since = 0, None
            if mark is not None:
                # A window sends its first `limit` alerts: the first and the
                # last line sent tell every line of it apart, in constant space.
                runs = window.runs
                if window.sent == 1 or not runs:
                    window.runs = [*runs[-1:], _SentRun(mark, mark, note)]
                else:
                    runs[-1].last = mark
            return _SEND if note is None else Verdict(send=True, note=note)
        window.suppressed += 1
        if window.suppressed_since is None:
            window.suppressed_since = now
        return Verdict(
            send=False,
            reason=(
                f"throttled: {ordinal(window.seen)} alert for {key} within"
                f" {self._window_words} (limit {self._limit})"
            ),
        )

    def _decided_before(self, window: _Window, mark: Mark, key: str) -> Verdict:
        """A line read again after a restart: sent again if it was sent (it
        may not have arrived), not if it was counted as suppressed. A line
        older than the windows remembered is sent again: at least once."""
        for run in reversed(window.runs):
            if run.first.at_or_before(mark):
                if mark.at_or_before(run.last):
                    return Verdict(send=True, note=run.note if mark == run.first else None)
                return Verdict(send=False, reason=f"throttled: counted for {key} before a restart")
        return Verdict(send=True)

    def persist(self, now: float, *, force: bool = False) -> bool:
        """Write the windows changed since the last call, before the
        checkpoint is saved, so that a saved checkpoint never runs ahead of
        them. False: put off (more than ``PERSIST_ROWS_AT_ONCE`` changed
        within ``PERSIST_AT_LEAST_EVERY_S`` of the last save); the caller
        then keeps the checkpoint where it was at the last save."""
        store = self._store
        if store is None:
            return True
        moment = time.monotonic()
        if (
            not force
            and len(self._dirty) > PERSIST_ROWS_AT_ONCE
            and moment - self._persisted_at < PERSIST_AT_LEAST_EVERY_S
        ):
            return False
        self._persisted_at = moment
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._prune(now)
        windows = self._windows
        rows = [(key, windows[key].dumps()) for key in self._dirty if key in windows]
        store.save_throttle_windows(self._integration_key, rows)
        self._dirty.clear()
        return True

    def _prune(self, now: float) -> None:
        assert self._store is not None
        self._pruned_at = now
        expired = [
            key
            for key, window in self._windows.items()
            if not window.suppressed and now - window.started_at >= self._window_s
        ]
        for key in expired:
            del self._windows[key]
            self._dirty.discard(key)
        if expired:
            self._store.delete_throttle_windows(self._integration_key, expired)
