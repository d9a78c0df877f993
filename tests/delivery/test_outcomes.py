"""What is recorded: error texts cut to 1 KiB and free of secrets.

Each runs the real deliverer, store and metrics against a local receiver or
a scripted integration (tests/delivery/support.py).
"""

from __future__ import annotations

import logging

import pytest
from tests.delivery.support import (
    TOKEN,
    Answer,
    Harness,
    PostIntegration,
    Receiver,
    ScriptedIntegration,
    until,
)

from wazuh_integrator.errors import Permanent


async def test_the_stored_error_is_cut_to_one_kib(harness: Harness, receiver: Receiver) -> None:
    receiver.default = Answer(422, body=b"x" * 5000)
    deliverer = harness.make(PostIntegration, url=receiver.url())
    await deliverer.start()
    await deliverer.submit(harness.delivery(0))
    await deliverer.join()
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert 0 < len(letter.last_error.encode()) <= 1024


async def test_no_secret_reaches_a_dead_letter_or_the_log(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    deliverer = harness.make(ScriptedIntegration)
    integration = deliverer.integration
    assert isinstance(integration, ScriptedIntegration)
    integration.outcomes = [Permanent(f"HTTP 401: bad key {TOKEN}", status=401)]
    await deliverer.start()
    with caplog.at_level(logging.DEBUG):
        await deliverer.submit(harness.delivery(0))
        await deliverer.join()
    (letter,) = harness.store.dead_letters(deliverer.key)
    assert letter.status == 401
    assert TOKEN not in letter.last_error
    assert "bad key" in letter.last_error
    # on_give_up was called once (just after the settling); that it raised is
    # logged, not fatal.
    await until(lambda: "give-up step failed" in caplog.text, "the give-up step's failure")
    assert integration.gave_up == ["1764262800.0"]
    assert TOKEN not in caplog.text
