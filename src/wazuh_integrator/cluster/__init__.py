"""Scale-out on Redis Streams: ``run --role reader`` on each Wazuh manager
node, ``run --role worker`` anywhere (see docs/cluster.md).

Needs the ``cluster`` extra (redis-py); ``run`` without ``--role`` never
imports this package.
"""

from __future__ import annotations

from wazuh_integrator import compat
from wazuh_integrator.config.loading import ConfigurationReport
from wazuh_integrator.config.models import WazuhPaths
from wazuh_integrator.errors import ConfigError, ConfigIssue
from wazuh_integrator.gc_tuning import tuned_for_the_daemon
from wazuh_integrator.pipeline import RunOptions, event_loop_factory
from wazuh_integrator.routes import load_configuration

__all__ = ["ROLES", "run_role"]

ROLES = ("reader", "worker")


def run_role(
    paths: WazuhPaths, options: RunOptions, role: str, report: ConfigurationReport | None = None
) -> int:
    """Run one cluster role until stopped; the ``run --role`` command. The
    configuration comes from ``report`` when the start-up checks read it."""
    configuration = load_configuration(paths, report)
    cluster = configuration.settings.cluster
    if cluster is None:
        where = paths.shown(paths.settings)
        raise ConfigError(
            [
                ConfigIssue(
                    where, None, None, f"--role {role} needs a [cluster] table with redis_url"
                )
            ]
        )
    try:
        from wazuh_integrator.cluster.reader import StreamReader
        from wazuh_integrator.cluster.worker import StreamWorker
    except ImportError as error:  # redis-py missing: say which extra brings it
        raise ConfigError(
            [
                ConfigIssue(
                    "run",
                    None,
                    None,
                    f"--role needs redis-py ({error.name}); install 'wazuh-integrator[cluster]'",
                )
            ]
        ) from error
    role_class = StreamReader if role == "reader" else StreamWorker
    pipeline = role_class(paths, configuration, options, cluster)
    # As asyncio.run: a role that fails at start (its metrics port taken) has
    # tasks running, which are cancelled rather than destroyed pending.
    with tuned_for_the_daemon():
        return compat.run(pipeline.run(), event_loop_factory())
