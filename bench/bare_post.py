"""The baseline of scenario 2: the fastest a single Python process posts with
aiohttp. One ClientSession on uvloop, 32 POSTs in flight, the bodies built in
advance; prints one JSON line with its wall and CPU seconds for the sending.

    python bench/bare_post.py BODIES_FILE   # lines of "<url>\t<json body>"
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time

import aiohttp
import uvloop

IN_FLIGHT = 32
HEADERS = {"Content-Type": "application/json", "User-Agent": "wazuh-integrator/bench"}


async def post_all(requests: list[tuple[str, bytes]]) -> int:
    connector = aiohttp.TCPConnector(limit=0)
    sent = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        pending = iter(requests)

        async def worker() -> None:
            nonlocal sent
            for url, body in pending:
                async with session.post(url, data=body, headers=HEADERS) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"HTTP {answer.status}")
                    sent += 1

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return sent


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    requests: list[tuple[str, bytes]] = []
    with open(sys.argv[1], "rb") as handle:
        for line in handle:
            url, _, body = line.rstrip(b"\n").partition(b"\t")
            requests.append((url.decode(), body))
    started_cpu, started = cpu_s(), time.perf_counter()
    sent = uvloop.run(post_all(requests))
    wall = time.perf_counter() - started
    print(json.dumps({"sent": sent, "wall_s": wall, "cpu_s": cpu_s() - started_cpu}))


if __name__ == "__main__":
    main()
