"""integrator.toml: our settings beyond ossec.conf, strict at load.

Every key has a default, so no file at all is valid. Unknown keys and bad
values are errors naming the file, the line (found by a light scan of the
text, since :mod:`tomllib` does not report positions) and the dotted key.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Wazuh's own Python is 3.10: the backport tomllib was made from.
    import tomli as tomllib

from wazuh_integrator.config.flood_settings import FLOOD_TABLES, FloodSettingsReader
from wazuh_integrator.config.models import (
    ClusterSettings,
    IntegrationSettings,
    RateLimit,
    Settings,
)
from wazuh_integrator.config.values import Invalid as _Invalid
from wazuh_integrator.errors import ConfigError, ConfigIssue
from wazuh_integrator.integrations.registry import Registry
from wazuh_integrator.secret import Secret
from wazuh_integrator.tls import TlsError, ssl_context

__all__ = ["load_settings", "parse_duration", "parse_rate_limit", "settings_key_line"]

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*")
_DURATION_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*([a-z]+)\s*")
_RATE_PERIODS_S = {
    **dict.fromkeys(("s", "sec", "second"), 1.0),
    **dict.fromkeys(("m", "min", "minute"), 60.0),
    **dict.fromkeys(("h", "hour"), 3600.0),
    **dict.fromkeys(("d", "day"), 86400.0),
}
_PLUGIN = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):([0-9]{1,5})")
_BLOCK_TABLE = re.compile(r"(.+)#([0-9]+)")
_API_VERSIONS = ("v2", "v3")
_FOLLOW_MODES = ("auto", "poll")
_VERSIONED_INTEGRATION = "virustotal"


def parse_duration(value: object) -> float:
    """Seconds from ``"30s"``, ``"90m"``, ``"24h"``, ``"2d"``, ``"500ms"`` or a number."""
    if isinstance(value, bool):
        raise _Invalid(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise _Invalid(f"{value!r} is negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS_S[match.group(2)]
    raise _Invalid(
        f"{value!r} is not a duration (a number of seconds, or like '30s', '90m', '24h', '2d')"
    )


def parse_rate_limit(value: str) -> RateLimit:
    """``"4/minute"``, ``"10/s"``, ``"100/hour"``, ``"500/day"`` (plurals allowed)."""
    match = _RATE.fullmatch(value.lower())
    if match:
        count, unit = int(match.group(1)), match.group(2)
        period_s = _RATE_PERIODS_S.get(unit)
        if period_s is None and len(unit) > 2 and unit.endswith("s"):  # "minutes", "days"
            period_s = _RATE_PERIODS_S.get(unit[:-1])
        if period_s is not None and count > 0:
            return RateLimit(count, period_s)
    raise _Invalid(
        f"{value!r} is not a rate limit (like '4/minute', '10/s', '100/hour', '500/day')"
    )


def _positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise _Invalid(f"{value!r} must be longer than zero")
    return seconds


def _int_at_least(low: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"{value!r} is not an integer")
        if value < low:
            raise _Invalid(f"{value} is below {low}")
        return value

    return parse


def _process_count(value: object) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Invalid(f'{value!r} is not "auto" or a number of processes (0 or more)')
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"{value!r} is not true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{value!r} is not a non-empty string")
    return value


def _path(value: object) -> Path:
    return Path(_text(value))


def _host_port(value: object) -> str:
    text = _text(value)
    match = _HOST_PORT.fullmatch(text)
    if not match or int(match.group(2)) > 65535:
        raise _Invalid(f"{text!r} is not 'host:port' (like '127.0.0.1:9797')")
    return text


def _plugins(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"{value!r} is not a list of 'module:Class' strings")
    for item in value:
        if not isinstance(item, str) or not _PLUGIN.fullmatch(item):
            raise _Invalid(f"{item!r} is not 'module:Class'")
    return tuple(value)


def _rate_limits(value: object) -> tuple[RateLimit, ...]:
    items = value if isinstance(value, list) else [value]
    limits = []
    for item in items:
        if not isinstance(item, str):
            raise _Invalid(f"{item!r} is not a rate limit string (like '4/minute')")
        limits.append(parse_rate_limit(item))
    return tuple(limits)


def _api_version(value: object) -> str:
    if value not in _API_VERSIONS:
        raise _Invalid(f"{value!r} is not one of {', '.join(_API_VERSIONS)}")
    return str(value)


def _follow_mode(value: object) -> str:
    if value not in _FOLLOW_MODES:
        raise _Invalid(f"{value!r} is not one of {', '.join(map(repr, _FOLLOW_MODES))}")
    return str(value)


@dataclass(frozen=True)
class _Key:
    field: str
    parse: Callable[[object], object]


_TOP_LEVEL: dict[str, _Key] = {
    "state_dir": _Key("state_dir", _path),
    "max_line_bytes": _Key("max_line_bytes", _int_at_least(1024)),
    "follow": _Key("follow", _follow_mode),
    "metrics_address": _Key("metrics_address", _host_port),
    "grace_period": _Key("grace_period_s", parse_duration),
    "http_processes": _Key("http_processes", _process_count),
    "plugins": _Key("plugins", _plugins),
}
_PER_INTEGRATION: dict[str, _Key] = {
    "rate_limit": _Key("rate_limits", _rate_limits),
    "concurrency": _Key("concurrency", _int_at_least(1)),
    "queue_size": _Key("queue_size", _int_at_least(1)),
    "max_retry_age": _Key("max_retry_age_s", parse_duration),
    "max_backoff": _Key("max_backoff_s", _positive_duration),
    "initial_backoff": _Key("initial_backoff_s", _positive_duration),
    "retry": _Key("retry", _boolean),
    "cache_ttl": _Key("cache_ttl_s", parse_duration),
    "api_version": _Key("api_version", _api_version),
    "ca_file": _Key("ca_file", _path),
    "client_cert": _Key("client_cert", _path),
    "client_key": _Key("client_key", _path),
    # Message templates, relative to the Wazuh home; which ones an integration
    # takes, and whether they compile, is judged with the registry (loading.py).
    "template": _Key("templates", _path),
    "summary_template": _Key("templates", _path),
    "subject_template": _Key("templates", _path),
    "html_template": _Key("templates", _path),
}
_TLS_FIELDS = ("ca_file", "client_cert", "client_key")
_INTEGRATIONS_TABLE = "integrations"
_CLUSTER_TABLE = "cluster"
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(value: object) -> Secret:
    text = _text(value)
    scheme, _, rest = text.partition("://")
    if scheme not in _REDIS_SCHEMES or not rest:
        raise _Invalid(
            "not a redis://, rediss:// or unix:// URL (the value is not shown: it may hold"
            " a password)"
        )
    return Secret(text)


_CLUSTER: dict[str, _Key] = {
    "redis_url": _Key("redis_url", _redis_url),
    "stream": _Key("stream", _text),
    "node": _Key("node", _text),
    "group": _Key("group", _text),
    "max_length": _Key("max_length", _int_at_least(1000)),
    "claim_idle": _Key("claim_idle_s", _positive_duration),
}


def load_settings(
    path: Path, *, must_exist: bool = False, display_path: str | None = None
) -> Settings:
    """The settings in ``path``; defaults when it does not exist (unless ``must_exist``).

    Raises :class:`ConfigError` carrying every problem found.
    """
    shown = display_path if display_path is not None else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if must_exist:
            issue = ConfigIssue(shown, None, None, "cannot read: file not found")
            raise ConfigError([issue]) from exc
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
        raise ConfigError([ConfigIssue(shown, None, None, f"cannot read: {reason}")]) from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_issue(shown, str(exc))]) from exc
    except RecursionError:
        # tomllib recurses into nested arrays and inline tables.
        issue = ConfigIssue(shown, None, None, "TOML syntax error: values nested too deeply")
        raise ConfigError([issue]) from None
    reader = _SettingsReader(shown, _KeyLocator(text), path.parent.absolute())
    settings = reader.read(document, path)
    if reader.issues:
        raise ConfigError(reader.issues)
    return settings


def settings_key_line(settings: Settings, table: tuple[str, ...], key: str) -> int | None:
    """The line of ``key`` in ``table`` of the settings file, for messages."""
    if settings.path is None:
        return None
    try:
        text = settings.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return _KeyLocator(text).line_of(table, key)


def _syntax_issue(path: str, message: str) -> ConfigIssue:
    where = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if where is None:
        return ConfigIssue(path, None, None, f"TOML syntax error: {message}")
    reason = message[: where.start()].strip()
    return ConfigIssue(
        path, int(where.group(1)), None, f"TOML syntax error: {reason} (column {where.group(2)})"
    )


def _merged(name_fields: dict[str, object], block_fields: dict[str, object]) -> dict[str, object]:
    """A block's table over its name's: key by key, and template by template."""
    merged = {**name_fields, **block_fields}
    name_templates, block_templates = name_fields.get("templates"), block_fields.get("templates")
    if isinstance(name_templates, dict) and isinstance(block_templates, dict):
        merged["templates"] = {**name_templates, **block_templates}
    return merged


class _SettingsReader:
    def __init__(self, path: str, locator: _KeyLocator, base_dir: Path) -> None:
        self.path = path
        self.locator = locator
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []

    def _issue(self, table: tuple[str, ...], key: str, message: str) -> None:
        dotted = ".".join((*table, key))
        line = self.locator.line_of(table, key)
        self.issues.append(ConfigIssue(self.path, line, None, f"{dotted}: {message}"))

    def _fields(
        self,
        table: tuple[str, ...],
        values: dict[str, Any],
        keys: dict[str, _Key],
        read_elsewhere: tuple[str, ...] = (),
    ) -> dict[str, object]:
        """``read_elsewhere``: valid keys another reader takes, named in the
        unknown-key message all the same (a `throtle` typo is shown `throttle`)."""
        fields: dict[str, object] = {}
        for key, value in values.items():
            spec = keys.get(key)
            if spec is None:
                expected = ", ".join((*keys, *read_elsewhere))
                self._issue(table, key, f"unknown key (expected one of: {expected})")
                continue
            try:
                parsed = spec.parse(value)
            except _Invalid as exc:
                self._issue(table, key, str(exc))
                continue
            if spec.field == "templates":
                templates = fields.setdefault("templates", {})
                assert isinstance(templates, dict)
                templates[key] = parsed
            else:
                fields[spec.field] = parsed
        return fields

    def read(self, document: dict[str, Any], path: Path) -> Settings:
        own_tables = (_INTEGRATIONS_TABLE, _CLUSTER_TABLE)
        top = {k: v for k, v in document.items() if k not in own_tables}
        fields = self._fields((), top, _TOP_LEVEL)
        if _CLUSTER_TABLE in document:
            fields["cluster"] = self._cluster(document[_CLUSTER_TABLE])
        integrations: dict[str, IntegrationSettings] = {}
        tables = document.get(_INTEGRATIONS_TABLE, {})
        if not isinstance(tables, dict):
            self._issue((), _INTEGRATIONS_TABLE, "must be a table of [integrations.<name>]")
            tables = {}
        by_name: dict[str, dict[str, object]] = {}
        by_block: dict[str, tuple[str, dict[str, object]]] = {}
        for name, values in tables.items():
            table = (_INTEGRATIONS_TABLE, name)
            if not isinstance(values, dict):
                self._issue((_INTEGRATIONS_TABLE,), name, "must be a table")
                continue
            block = _BLOCK_TABLE.fullmatch(name)
            base = block.group(1) if block else name
            if not Registry.is_supported_name(base):
                self._table_issue(table, f"'{base}' is not a supported integration name")
                continue
            if block:
                by_block[name] = (base, self._integration_fields(table, base, values))
            else:
                by_name[name] = self._integration_fields(table, name, values)
        integrations = {name: self._settings(name, own) for name, own in by_name.items()}
        blocks = {
            key: self._settings(key, _merged(by_name.get(base, {}), own))
            for key, (base, own) in by_block.items()
        }
        block_lines = {
            key: self.locator.first_line_under((_INTEGRATIONS_TABLE, key)) for key in by_block
        }
        return Settings(
            path=path,
            integrations=integrations,
            blocks=blocks,
            block_lines=block_lines,
            **fields,  # type: ignore[arg-type]
        )

    def _cluster(self, values: object) -> ClusterSettings | None:
        table = (_CLUSTER_TABLE,)
        if not isinstance(values, dict):
            self._issue((), _CLUSTER_TABLE, "must be a table: [cluster]")
            return None
        fields = self._fields(table, values, _CLUSTER)
        if "redis_url" not in fields:
            if "redis_url" not in values:
                self._table_issue(table, "redis_url is required (like 'redis://host:6379/0')")
            return None
        return ClusterSettings(**fields)  # type: ignore[arg-type]

    def _table_issue(self, table: tuple[str, ...], message: str) -> None:
        line = self.locator.table_line(table)
        self.issues.append(ConfigIssue(self.path, line, None, f"{'.'.join(table)}: {message}"))

    def _integration_fields(
        self, table: tuple[str, ...], name: str, values: dict[str, Any]
    ) -> dict[str, object]:
        """The fields one ``[integrations.*]`` table sets, checked on their own."""
        plain = {key: value for key, value in values.items() if key not in FLOOD_TABLES}
        fields = self._fields(table, plain, _PER_INTEGRATION, FLOOD_TABLES)
        floods = FloodSettingsReader(self.path, self.locator, self.issues, parse_duration)
        fields.update(floods.read(table, name, values))
        if "api_version" in fields and name != _VERSIONED_INTEGRATION:
            self._issue(table, "api_version", f"only {_VERSIONED_INTEGRATION} has API versions")
            del fields["api_version"]
        initial, most = fields.get("initial_backoff_s"), fields.get("max_backoff_s")
        defaults = IntegrationSettings()
        initial_s = initial if isinstance(initial, float) else defaults.initial_backoff_s
        max_s = most if isinstance(most, float) else defaults.max_backoff_s
        if initial_s > max_s:
            key = "initial_backoff" if "initial_backoff_s" in fields else "max_backoff"
            self._issue(
                table, key, f"initial_backoff ({initial_s:g}s) exceeds max_backoff ({max_s:g}s)"
            )
        self._check_tls(table, fields)
        return fields

    @staticmethod
    def _settings(name: str, fields: dict[str, object]) -> IntegrationSettings:
        return IntegrationSettings(**fields)  # type: ignore[arg-type]

    def _check_tls(self, table: tuple[str, ...], fields: dict[str, object]) -> None:
        """Resolve the TLS files (relative to integrator.toml's folder) and load
        them now, so that a bad one is an error at start, not at the first alert."""
        files: list[Path | None] = []
        for name in _TLS_FIELDS:
            value = fields.get(name)
            if isinstance(value, Path) and not value.is_absolute():
                value = fields[name] = self.base_dir / value
            files.append(value if isinstance(value, Path) else None)
        ca_file, cert, key = files
        if key is not None and cert is None:
            self._issue(table, "client_key", "needs client_cert (the certificate it belongs to)")
            return
        try:
            ssl_context(ca_file, cert, key)
        except TlsError as exc:
            self._issue(table, "ca_file" if "CA file" in str(exc) else "client_cert", str(exc))


class _KeyLocator:
    """Finds the line of a key in TOML text: enough for messages, not a parser.

    Handles ``[table]`` headers (quoted parts too) and ``key = value`` lines,
    plus dotted keys written inline (``integrations.slack.retry = false``).
    """

    _HEADER = re.compile(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _ASSIGNMENT = re.compile(r"\s*([^=\s][^=]*?)\s*=")

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    @staticmethod
    def _parts(dotted: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in dotted.split("."))

    def table_line(self, table: tuple[str, ...]) -> int | None:
        for number, line in enumerate(self._lines, start=1):
            header = self._HEADER.match(line)
            if header and self._parts(header.group(1)) == table:
                return number
        return None

    def line_of(self, table: tuple[str, ...], key: str) -> int | None:
        current: tuple[str, ...] = ()
        for number, line in enumerate(self._lines, start=1):
            header = self._HEADER.match(line)
            if header:
                current = self._parts(header.group(1))
                continue
            assignment = self._ASSIGNMENT.match(line)
            if assignment and (*current, *self._parts(assignment.group(1))) == (*table, key):
                return number
        return self.table_line((*table, key))

    def first_line_under(self, table: tuple[str, ...]) -> int | None:
        """The first header of ``table`` or of a table inside it."""
        for number, line in enumerate(self._lines, start=1):
            header = self._HEADER.match(line)
            if header and self._parts(header.group(1))[: len(table)] == table:
                return number
        return None

    def item_line(self, table: tuple[str, ...], key: str, index: int) -> int | None:
        """The line of item ``index`` of an array of tables: the ``index``-th
        ``[[table.key]]`` header, or the ``index``-th ``{`` from ``key = [``."""
        headers = [
            number
            for number, line in enumerate(self._lines, start=1)
            if line.lstrip().startswith("[[")
            and (header := self._HEADER.match(line))
            and self._parts(header.group(1)) == (*table, key)
        ]
        if headers:
            return headers[index] if index < len(headers) else headers[-1]
        start = self.line_of(table, key)
        if start is None:
            return None
        seen = -1
        for number in range(start, len(self._lines) + 1):
            seen += self._lines[number - 1].count("{")
            if seen >= index:
                return number
        return start
