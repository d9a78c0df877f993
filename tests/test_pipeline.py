"""The daemon's event loop; the pipeline itself runs in tests/e2e."""

from __future__ import annotations

import sys

import pytest

from wazuh_integrator.pipeline import event_loop_factory


def test_the_daemon_runs_on_uvloop_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert event_loop_factory() is uvloop.new_event_loop


def test_without_uvloop_the_daemon_runs_on_asyncio_s_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert event_loop_factory() is None
