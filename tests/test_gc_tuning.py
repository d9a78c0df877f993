"""The collector's settings for the daemon's run, and what is left after it."""

from __future__ import annotations

import gc

import pytest

from wazuh_integrator.gc_tuning import DAEMON_THRESHOLDS, tuned_for_the_daemon


def test_start_up_is_frozen_and_collections_spaced_out_while_the_daemon_runs() -> None:
    before = gc.get_threshold()
    made_at_start_up = {"a": [1, 2, 3]}

    with tuned_for_the_daemon():
        assert gc.get_threshold() == DAEMON_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert not any(made_at_start_up is obj for obj in gc.get_objects())
        made_while_running = {"b": [4]}
        assert any(made_while_running is obj for obj in gc.get_objects())

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert any(made_at_start_up is obj for obj in gc.get_objects())


def test_the_settings_come_back_when_the_run_fails() -> None:
    before = gc.get_threshold()

    with pytest.raises(RuntimeError, match="boom"), tuned_for_the_daemon():
        raise RuntimeError("boom")

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_during_the_run_are_still_collected() -> None:
    with tuned_for_the_daemon():
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
