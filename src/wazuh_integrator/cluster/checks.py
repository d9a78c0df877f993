"""``check-config``'s cluster section: does Redis answer, and how does the
stream's consumer group stand. Reads only; creates nothing."""

from __future__ import annotations

from redis.exceptions import RedisError, ResponseError

from wazuh_integrator.cluster.connection import connect, node_name, shown_url
from wazuh_integrator.config.models import ClusterSettings

__all__ = ["check_cluster"]

CHECK_TIMEOUT_S = 5.0


async def check_cluster(cluster: ClusterSettings) -> tuple[list[str], bool]:
    """One line per finding, and True unless Redis cannot be used."""
    url = shown_url(cluster)
    lines = [f"node {node_name(cluster)}, stream '{cluster.stream}', group '{cluster.group}'"]
    client = connect(cluster)
    try:
        try:
            await client.ping()
            info = await client.info("server")
        except (RedisError, OSError) as error:
            lines.append(f"FAIL  Redis at {url}: {error or type(error).__name__}")
            return lines, False
        version = str(info.get("redis_version", "?"))
        lines.append(f"ok    Redis at {url} answers (version {version})")
        major = version.split(".")[0]
        if major.isdigit() and int(major) < 5:
            lines.append("FAIL  Redis 5 or newer is needed for streams and consumer groups")
            return lines, False
        try:
            length = int(await client.xlen(cluster.stream))
            exists = bool(await client.exists(cluster.stream))
            groups = await client.xinfo_groups(cluster.stream) if exists else []
        except ResponseError as error:
            lines.append(f"FAIL  stream '{cluster.stream}': {error}")
            return lines, False
        group = next(
            (g for g in groups if g.get("name") in (cluster.group, cluster.group.encode())),
            None,
        )
        if group is None:
            lines.append(
                f"ok    stream holds {length} entries; group '{cluster.group}' not created yet"
                " (the first worker creates it, from the stream's first entry)"
            )
        else:
            lag = group.get("lag")
            lines.append(
                f"ok    stream holds {length} entries; group '{cluster.group}':"
                f" {group.get('consumers', 0)} consumers, {group.get('pending', 0)} pending,"
                f" {'unknown' if lag is None else lag} not yet read"
            )
        return lines, True
    finally:
        await client.aclose()
