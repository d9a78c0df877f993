"""Python's cyclic garbage collector, set for a daemon that decodes thousands
of alerts a second and may hold tens of thousands of them waiting.

With the interpreter's defaults a collection of the youngest objects ran
every 700 new containers (every few alerts: a decoded alert is dozens of
dicts and lists), and a full one each time the survivors grew by a quarter.
An integration slower than the alerts keeps every alert it has not sent (the
overflow, the watermark's pending lines), so the survivors grew all the time
and full collections, each walking every object of the process, start-up's
modules included, came back again and again on the reader's core: they were
most of what a slow integration cost a fast one beside it (bench scenario 5).

What is alive once the daemon has started is frozen out of every later
collection, and collections run less often. Almost everything here is freed
by reference counting when the last reference goes; the collector is only
for cycles, which the delivery path does not make per alert. A frozen object
is still freed when its last reference goes; only a cycle of start-up's
objects that a reload drops stays, once (what later reloads drop was made
after the freeze and is collected as usual).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["DAEMON_THRESHOLDS", "tuned_for_the_daemon"]

# Youngest generation every 10,000 new containers (about a hundred alerts),
# the middle one every 50 of those, a full collection at most every 100 of
# those and, as always, only once the survivors grew by a quarter.
DAEMON_THRESHOLDS: Final = (10_000, 50, 100)


@contextmanager
def tuned_for_the_daemon() -> Iterator[None]:
    """Freeze what start-up made and space collections out for the daemon's
    run; the interpreter's settings come back after it (a command run in a
    test's process leaves that process as it was)."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*DAEMON_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
