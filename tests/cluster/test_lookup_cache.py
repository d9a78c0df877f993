"""The lookup cache's two backends, one suite: the SQLite state store (single
process) and Redis (cluster workers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from tests.cluster.redis_server import RedisServer

from wazuh_integrator.cluster.cache import RedisLookupCache
from wazuh_integrator.integrations.base import LookupCache
from wazuh_integrator.store import StateStore


class Backend:
    """Opens caches that share one backing store, as two workers would."""

    def __init__(self, kind: str, tmp_path: Path, server: RedisServer | None) -> None:
        self.kind = kind
        self._path = tmp_path / "state.db"
        self._server = server
        self._opened: list[Any] = []

    def open(self) -> LookupCache:
        if self._server is None:
            store = StateStore(self._path, commit_interval_s=0)
            self._opened.append(store)
            return store
        local = StateStore(self._path.with_name(f"local{len(self._opened)}.db"))
        cache = RedisLookupCache(redis.Redis.from_url(self._server.url), "t", local)
        self._opened += [cache, local]
        return cache

    def close(self) -> None:
        for opened in reversed(self._opened):
            opened.close()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None
    opened = Backend(request.param, tmp_path, server)
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "value", [{"positives": 2, "total": 70}, [1, "two", None], "text", 0, 1.5, True, {}]
)
def test_values_round_trip(backend: Backend, value: Any) -> None:
    cache = backend.open()
    cache.put("virustotal", "d41d8cd98f00b204e9800998ecf8427e", value, 60)
    assert cache.get("virustotal", "d41d8cd98f00b204e9800998ecf8427e") == value


def test_an_entry_expires_after_its_ttl(backend: Backend) -> None:
    cache = backend.open()
    cache.put("vt", "a", {"found": 1}, 0.3)
    cache.put("vt", "b", {"found": 0}, 60)
    assert cache.get("vt", "a") == {"found": 1}
    deadline = time.monotonic() + 5
    while cache.get("vt", "a") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.get("vt", "a") is None
    assert cache.get("vt", "b") == {"found": 0}


def test_namespaces_are_separate(backend: Backend) -> None:
    cache = backend.open()
    cache.put("virustotal", "k", "vt", 60)
    cache.put("maltiverse", "k", "mv", 60)
    assert (cache.get("virustotal", "k"), cache.get("maltiverse", "k")) == ("vt", "mv")
    assert cache.get("other", "k") is None


def test_what_is_not_json_is_refused(backend: Backend) -> None:
    cache = backend.open()
    with pytest.raises(TypeError):
        cache.put("vt", "k", object(), 60)
    assert cache.get("vt", "k") is None


def test_a_second_process_sees_the_answer(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    first.put("vt", "k", {"positives": 1}, 3600)
    assert second.get("vt", "k") == {"positives": 1}


async def test_redis_down_falls_back_to_the_local_store(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    local = StateStore(tmp_path / "state.db")
    cache = RedisLookupCache(redis.Redis.from_url(redis_server.url, socket_timeout=0.5), "t", local)
    try:
        cache.put("vt", "k", {"positives": 1}, 3600)
        await redis_server.stop()
        assert cache.get("vt", "k") == {"positives": 1}  # answered by the local store
        cache.put("vt", "j", 2, 3600)  # and a new answer is kept there
        assert cache.get("vt", "j") == 2
    finally:
        cache.close()
        local.close()
