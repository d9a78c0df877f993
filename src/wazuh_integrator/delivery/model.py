"""What the pipeline hands the delivery layer, and the state of one delivery in flight."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from wazuh_integrator.errors import DeliveryError

__all__ = ["Delivery", "Job", "decode_raw"]


@dataclass(eq=False)
class Delivery:
    """One alert for one integration.

    ``on_settled`` is called exactly once, when the alert is delivered, parked
    in the state store or dead-lettered: from then on the alert is safe without
    its line in alerts.json, so the checkpoint may move past it.
    """

    alert: dict[str, Any]
    raw: bytes
    on_settled: Callable[[], None] | None = None
    settled: bool = field(default=False, init=False, repr=False)


@dataclass(eq=False)
class Job:
    """A live delivery's progress through its quick, in-memory retries."""

    delivery: Delivery
    attempts: int = 0
    quick_retries: int = 0
    rate_limit_waits: int = 0
    first_failed_at: float | None = None
    last_error: DeliveryError | None = None

    @property
    def alert_id(self) -> str:
        return str(self.delivery.alert.get("id", "?"))


def decode_raw(raw: bytes) -> dict[str, Any] | None:
    """An alert line decoded again (held raw in the overflow or the store);
    None when it is not a JSON object."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
