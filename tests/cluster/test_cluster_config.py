"""[cluster] in integrator.toml, check-config's cluster section, run --role's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.cluster.harness import cluster_home, removed_after
from tests.cluster.redis_server import RedisServer, free_port
from tests.e2e.harness import Receiver

from wazuh_integrator.cluster.connection import shown_url
from wazuh_integrator.config.models import ClusterSettings
from wazuh_integrator.config.settings import load_settings
from wazuh_integrator.errors import ConfigError
from wazuh_integrator.secret import Secret


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "integrator.toml"
    path.write_text(text)
    return path


def test_defaults_beside_the_url(tmp_path: Path) -> None:
    path = settings_file(tmp_path, '[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\n')
    cluster = load_settings(path).cluster
    assert cluster is not None
    assert cluster.redis_url.reveal() == "redis://127.0.0.1:6379/0"
    assert (cluster.stream, cluster.node, cluster.group) == (
        "wazuh-integrator:alerts",
        "",
        "wazuh-integrator",
    )
    assert (cluster.max_length, cluster.claim_idle_s) == (1_000_000, 30.0)


def test_no_cluster_table_means_single_process(tmp_path: Path) -> None:
    assert load_settings(settings_file(tmp_path, "grace_period = 5\n")).cluster is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[cluster]\nstream = "s"\n',
            "integrator.toml:1: cluster: redis_url is required (like 'redis://host:6379/0')",
        ),
        (
            '[cluster]\nredis_url = "http://user:hunter2@host/"\n',
            "integrator.toml:2: cluster.redis_url: not a redis://, rediss:// or unix:// URL"
            " (the value is not shown: it may hold a password)",
        ),
        (
            '[cluster]\nredis_url = "redis://h"\nclaim_idle = "0s"\n',
            "integrator.toml:3: cluster.claim_idle: '0s' must be longer than zero",
        ),
        (
            '[cluster]\nredis_url = "redis://h"\nmaxlen = 5\n',
            "integrator.toml:3: cluster.maxlen: unknown key (expected one of: redis_url,"
            " stream, node, group, max_length, claim_idle)",
        ),
        ('cluster = "redis://h"\n', "integrator.toml:1: cluster: must be a table: [cluster]"),
    ],
)
def test_bad_cluster_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = settings_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, display_path="integrator.toml")
    assert [str(issue) for issue in caught.value.issues] == [message]
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@10.0.0.5:6380/2", "redis://10.0.0.5:6380/2"),
        ("rediss://admin:hunter2@redis.example:6379/0", "rediss://redis.example:6379/0"),
        ("redis://[::1]:6379", "redis://[::1]:6379"),
        ("unix:///run/redis/redis.sock", "unix:///run/redis/redis.sock"),
    ],
)
def test_the_shown_url_never_carries_the_password(url: str, shown: str) -> None:
    assert shown_url(ClusterSettings(redis_url=Secret(url))) == shown


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wazuh_integrator", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_check_config_reports_redis_and_the_group(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    home = cluster_home(redis_server.url, receiver, node="manager-a")
    with removed_after(home):
        before = cli(home, "check-config")
        assert before.returncode == 0, before.stdout + before.stderr
        assert "ok    Redis at redis://127.0.0.1:" in before.stdout
        assert "group 'wazuh-integrator' not created yet" in before.stdout
        client = redis_server.client()
        try:
            await client.xgroup_create("wazuh-integrator:alerts", "wazuh-integrator", mkstream=True)
            await client.xadd("wazuh-integrator:alerts", {"alert": b"{}", "node": "manager-a"})
        finally:
            await client.aclose()
        after = cli(home, "check-config")
        assert after.returncode == 0
        assert (
            "stream holds 1 entries; group 'wazuh-integrator': 0 consumers, 0 pending,"
            " 1 not yet read"
        ) in after.stdout


async def test_check_config_fails_when_redis_does_not_answer(receiver: Receiver) -> None:
    home = cluster_home(f"redis://:hunter2@127.0.0.1:{free_port()}/0", receiver)
    with removed_after(home):
        result = cli(home, "check-config")
    assert result.returncode == 1
    assert "FAIL  Redis at redis://127.0.0.1:" in result.stdout
    assert "Cluster: NOT OK." in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


async def test_a_role_without_a_cluster_table_is_refused(receiver: Receiver) -> None:
    home = cluster_home("redis://127.0.0.1:1/0", receiver)
    with removed_after(home):
        (home / "etc" / "integrator.toml").write_text("")
        result = cli(home, "run", "--role", "worker")
        assert result.returncode != 0
        assert "--role worker needs a [cluster] table with redis_url" in result.stderr
        once = cli(home, "run", "--role", "worker", "--once")
        assert "--once, --from-start, --since and --alerts are for readers" in once.stderr
