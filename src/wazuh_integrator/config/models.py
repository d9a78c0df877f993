"""Typed, frozen models of the configuration, shared by every part of the daemon."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wazuh_integrator.errors import ConfigIssue
from wazuh_integrator.secret import Secret, url_secret_parts

DEFAULT_HOME = Path("/var/ossec")


@dataclass(frozen=True)
class WazuhPaths:
    """Every path derived from the Wazuh home, as REFERENCE.md lists them."""

    home: Path
    config: Path
    settings: Path
    settings_given: bool = False  # named by the user: then it must exist

    @classmethod
    def from_home(
        cls, home: Path, *, config: Path | None = None, settings: Path | None = None
    ) -> WazuhPaths:
        return cls(
            home=home,
            config=config if config is not None else home / "etc" / "ossec.conf",
            settings=settings if settings is not None else home / "etc" / "integrator.toml",
            settings_given=settings is not None,
        )

    def shown(self, path: Path) -> str:
        """How ``path`` appears in messages: relative to the home when inside it."""
        try:
            return str(path.relative_to(self.home))
        except ValueError:
            return str(path)

    @property
    def alerts(self) -> Path:
        return self.home / "logs" / "alerts" / "alerts.json"

    @property
    def integrations_dir(self) -> Path:
        return self.home / "integrations"

    @property
    def analysisd_socket(self) -> Path:
        return self.home / "queue" / "sockets" / "queue"

    @property
    def integrations_log(self) -> Path:
        return self.home / "logs" / "integrations.log"


@dataclass(frozen=True)
class IntegrationBlock:
    """One valid ``<integration>`` block of ossec.conf.

    ``index`` is the 0-based position of the block among all ``<integration>``
    blocks of the file (valid or not), which is how ``test --json`` and the
    state store name it. ``line`` is where its ``<integration>`` tag opens.
    """

    index: int
    path: str
    line: int
    name: str
    hook_url: Secret | None = None
    api_key: Secret | None = None
    alert_format: str | None = None
    level: int | None = None
    rule_ids: tuple[int, ...] = ()
    groups: tuple[str, ...] = ()
    event_location: str | None = None
    options: Mapping[str, Any] | None = None
    max_log: int = 165
    timeout_s: int = 10
    retries: int = 3

    @property
    def key(self) -> str:
        """A stable name for this block in logs, metrics and the state store."""
        return f"{self.name}#{self.index}"

    @property
    def json_format(self) -> bool:
        return self.alert_format == "json"

    @property
    def secrets(self) -> list[str]:
        """The secret values of this block, for scrubbing free text: the API
        key, the hook URL and each part of it that may hold a token alone
        (:func:`~wazuh_integrator.secret.url_secret_parts`)."""
        values = [self.api_key.reveal()] if self.api_key else []
        if self.hook_url:
            values.extend(url_secret_parts(self.hook_url.reveal()))
        return values


@dataclass(frozen=True)
class DisabledIntegration:
    """A block that parsed but cannot run, with the reason a person reads."""

    block: IntegrationBlock
    reason: str


@dataclass(frozen=True)
class InvalidBlock:
    """An ``<integration>`` block with errors: listed by check-config, never run."""

    index: int
    line: int
    name: str | None


@dataclass(frozen=True)
class OssecConfig:
    """The result of reading ossec.conf: blocks, and every problem found.

    ``errors`` non-empty means the configuration is invalid: ``run`` refuses
    it and ``check-config`` exits 1.
    """

    path: Path
    blocks: tuple[IntegrationBlock, ...] = ()
    errors: tuple[ConfigIssue, ...] = ()
    warnings: tuple[ConfigIssue, ...] = ()
    invalid_blocks: tuple[InvalidBlock, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` deliveries per ``period_s`` seconds."""

    count: int
    period_s: float

    def __str__(self) -> str:
        return f"{self.count}/{self.period_s:g}s"


@dataclass(frozen=True)
class ThrottleSettings:
    """``[integrations.<name>.throttle]``: at most ``limit`` alerts per ``key``
    per ``window_s`` are delivered; later ones are counted, not sent."""

    key: tuple[str, ...]
    window_s: float
    limit: int


@dataclass(frozen=True)
class DigestSettings:
    """``[integrations.<name>.digest]``: alerts grouped by ``group_by`` and sent
    as one message per group, Alertmanager's way."""

    group_by: tuple[str, ...]
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    max_alerts: int = 10


@dataclass(frozen=True)
class WhereCondition:
    """One condition of ``filter.where`` on a dotted alert field; exactly one
    of ``equals``, ``any_of``, ``regex``, ``cidr``, ``exists`` is set.
    ``negate`` (``not = true``) inverts it."""

    field: str
    equals: Any = None
    any_of: tuple[Any, ...] | None = None
    regex: str | None = None
    cidr: tuple[str, ...] | None = None
    exists: bool | None = None
    negate: bool = False
    line: int | None = None


@dataclass(frozen=True)
class FilterSettings:
    """``[integrations.<name>.filter]``: filters that narrow the block's stock ones."""

    exclude_rule_ids: tuple[str, ...] = ()
    exclude_groups: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    exclude_agents: tuple[str, ...] = ()
    min_level: int | None = None
    max_level: int | None = None
    where: tuple[WhereCondition, ...] = ()


@dataclass(frozen=True)
class IntegrationSettings:
    """``[integrations.<name>]`` of integrator.toml; ``None`` means the
    integration's own default."""

    rate_limits: tuple[RateLimit, ...] | None = None
    concurrency: int | None = None
    # A decoded alert takes about five times its line (5 KiB): a few hundred
    # per integration keep the send slots fed, and more only crowd the CPU's
    # caches (scenario 2, measured A/B: 1,000 cost 14 % more CPU per alert
    # than 256 to one block, 28 % spread over four). Bursts past it wait raw
    # in the overflow.
    queue_size: int = 256
    max_retry_age_s: float = 24 * 3600.0
    max_backoff_s: float = 300.0
    initial_backoff_s: float = 1.0
    retry: bool | None = None
    cache_ttl_s: float = 24 * 3600.0
    api_version: str | None = None
    # TLS: None means the system's trusted CAs, and no client certificate.
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    # Template role ("template", "summary_template") -> file, relative to the Wazuh home.
    templates: Mapping[str, Path] = field(default_factory=dict)
    throttle: ThrottleSettings | None = None
    digest: DigestSettings | None = None
    filter: FilterSettings | None = None

    @property
    def shapes_alerts(self) -> bool:
        """Whether the floods stage (filter, throttle, digest) has work here."""
        return self.throttle is not None or self.digest is not None or self.filter is not None


@dataclass(frozen=True)
class ClusterSettings:
    """integrator.toml's ``[cluster]`` table: where the shared Redis stream is.

    ``redis_url`` may carry a password, so it is a :class:`Secret`.
    """

    redis_url: Secret
    stream: str = "wazuh-integrator:alerts"
    node: str = ""  # "": the host name, filled in when the reader starts
    group: str = "wazuh-integrator"
    max_length: int = 1_000_000  # XADD's approximate MAXLEN bound
    claim_idle_s: float = 30.0  # a pending entry idle this long is claimed by another worker


@dataclass(frozen=True)
class Settings:
    """integrator.toml. Every key has a default; no file at all is valid."""

    path: Path | None = None
    state_dir: Path | None = None  # None: <home>/var/integrator
    max_line_bytes: int = 1024 * 1024
    # How alerts.json is followed: "auto" (inotify where it works, else a
    # poll every 10 ms) or "poll" (for files on NFS, where inotify misses
    # writes made on other machines).
    follow: str = "auto"
    metrics_address: str | None = None  # "host:port", None disables the endpoint
    grace_period_s: float = 10.0
    # HTTP transport processes that send the webhooks' requests on other
    # cores; None ("auto"): one when the daemon may run on two CPUs or more.
    http_processes: int | None = None
    plugins: tuple[str, ...] = ()
    integrations: Mapping[str, IntegrationSettings] = field(default_factory=dict)
    # ``[integrations."<name>#<index>"]``: one block's settings, already merged
    # over its name's table; ``block_lines`` says where each table was written.
    blocks: Mapping[str, IntegrationSettings] = field(default_factory=dict)
    block_lines: Mapping[str, int | None] = field(default_factory=dict)
    cluster: ClusterSettings | None = None  # None: single process, no Redis

    def for_integration(self, name: str) -> IntegrationSettings:
        return self.integrations.get(name, IntegrationSettings())

    def for_block(self, block: IntegrationBlock) -> IntegrationSettings:
        """The settings of one block: its own table, else its name's, else defaults."""
        own = self.blocks.get(block.key)
        return own if own is not None else self.for_integration(block.name)

    def resolved_state_dir(self, home: Path) -> Path:
        # A relative state_dir is relative to the Wazuh home; an absolute one wins the join.
        return home / self.state_dir if self.state_dir is not None else home / "var" / "integrator"

    def state_database(self, home: Path) -> Path:
        """The SQLite file holding the checkpoint, parked deliveries and dead letters."""
        return self.resolved_state_dir(home) / "state.db"
