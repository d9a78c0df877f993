"""Settings shared by the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from wazuh_integrator.logsetup import WazuhFormatter

# CI runs the suite on two shared cores: data generation may be slow there
# without anything being wrong, so neither the per-example deadline nor the
# too-slow health check may fail a test.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


@pytest.fixture(autouse=True)
def _daemon_logging_undone() -> Iterator[None]:
    """A test that runs the CLI in this process leaves the daemon's log
    handler on the root logger, writing to that test's captured stderr. Once
    pytest closes it, every later record prints a "Logging error" trace."""
    root = logging.getLogger()
    ours = logging.getLogger("wazuh_integrator")
    levels = root.level, ours.level
    yield
    for handler in list(root.handlers):
        if isinstance(handler.formatter, WazuhFormatter):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(levels[0])
    ours.setLevel(levels[1])
