"""CachedLookups: one request per key, whoever asks and however often."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from wazuh_integrator.config.models import IntegrationSettings
from wazuh_integrator.errors import Transient
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.lookups import Answer, CachedLookups
from wazuh_integrator.store import StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as state:
        yield state


def lookups(tmp_path: Path, store: StateStore | None, ttl_s: float = 3600.0) -> CachedLookups:
    context = IntegrationContext(
        home=tmp_path,
        state_dir=tmp_path,
        settings=IntegrationSettings(cache_ttl_s=ttl_s),
        cache=store,
    )
    return CachedLookups("test", context)


class Service:
    """Counts lookups; each answers once ``release`` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def lookup(self) -> Answer:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise Transient("HTTP 503: busy")
        return {"positives": 3}


async def test_concurrent_askers_share_one_request(tmp_path: Path, store: StateStore) -> None:
    shared, service = lookups(tmp_path, store), Service()
    askers = [asyncio.create_task(shared.answer("abc", service.lookup)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert shared.is_known("abc"), "a key being looked up costs no new request"
    service.release.set()
    assert await asyncio.gather(*askers) == [{"positives": 3}] * 5
    assert service.calls == 1


async def test_an_answer_is_cached_across_instances(tmp_path: Path, store: StateStore) -> None:
    service = Service()
    service.release.set()
    await lookups(tmp_path, store).answer("abc", service.lookup)
    again = lookups(tmp_path, store)
    assert again.is_known("abc") and not again.is_known("def")
    assert await again.answer("abc", service.lookup) == {"positives": 3}
    assert service.calls == 1


@pytest.mark.parametrize("store_present", [False, True])
async def test_without_cache_or_ttl_every_ask_is_a_request(
    tmp_path: Path, store: StateStore, store_present: bool
) -> None:
    shared = lookups(tmp_path, store if store_present else None, ttl_s=0.0)
    service = Service()
    service.release.set()
    await shared.answer("abc", service.lookup)
    await shared.answer("abc", service.lookup)
    assert service.calls == 2
    assert not shared.is_known("abc")


async def test_a_failure_reaches_every_asker_and_is_not_cached(
    tmp_path: Path, store: StateStore
) -> None:
    shared, service = lookups(tmp_path, store), Service(fail=True)
    askers = [asyncio.create_task(shared.answer("abc", service.lookup)) for _ in range(3)]
    await asyncio.sleep(0.01)
    service.release.set()
    results = await asyncio.gather(*askers, return_exceptions=True)
    assert all(isinstance(result, Transient) for result in results)
    assert not shared.is_known("abc"), "a failed lookup is asked again next time"


async def test_one_asker_giving_up_does_not_cancel_the_others(
    tmp_path: Path, store: StateStore
) -> None:
    shared, service = lookups(tmp_path, store), Service()
    impatient = asyncio.create_task(shared.answer("abc", service.lookup))
    patient = asyncio.create_task(shared.answer("abc", service.lookup))
    await asyncio.sleep(0.01)
    impatient.cancel()
    service.release.set()
    assert await patient == {"positives": 3}
    assert service.calls == 1
