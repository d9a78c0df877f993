"""Fixtures every end-to-end module uses, from the harness: a Wazuh home
short enough for a Unix socket path, removed afterwards, and a local receiver."""

from __future__ import annotations

from tests.e2e import harness

home = harness.home
receiver = harness.receiver
