from __future__ import annotations

from pathlib import Path

import pytest

from wazuh_integrator.config.models import IntegrationSettings, RateLimit, Settings
from wazuh_integrator.config.settings import load_settings
from wazuh_integrator.errors import ConfigError

SHOWN = "etc/integrator.toml"


def load_text(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "integrator.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, display_path=SHOWN)


def issues_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return [str(issue) for issue in caught.value.issues]


def test_no_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "integrator.toml")

    assert settings == Settings()
    assert settings.for_integration("slack") == IntegrationSettings()
    assert settings.resolved_state_dir(Path("/var/ossec")) == Path("/var/ossec/var/integrator")


def test_no_file_is_an_error_when_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "x.toml", must_exist=True, display_path="x.toml")

    assert str(caught.value) == "x.toml: cannot read: file not found"


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "# nothing yet\n")

    assert settings == Settings(path=tmp_path / "integrator.toml")


def test_every_key(tmp_path: Path) -> None:
    settings = load_text(
        tmp_path,
        """
state_dir = "var/integrator-state"
max_line_bytes = 2097152
follow = "poll"
metrics_address = "127.0.0.1:9797"
grace_period = "30s"
plugins = ["my_company.wazuh:TicketIntegration"]

[integrations.virustotal]
rate_limit = ["4/minute", "500/day"]
concurrency = 2
queue_size = 50
max_retry_age = "2d"
max_backoff = "10m"
initial_backoff = "500ms"
retry = true
cache_ttl = "24h"
api_version = "v3"

[integrations.slack]
rate_limit = "1/s"
retry = false
""",
    )

    assert settings.state_dir == Path("var/integrator-state")
    assert settings.resolved_state_dir(Path("/var/ossec")) == Path(
        "/var/ossec/var/integrator-state"
    )
    assert settings.max_line_bytes == 2_097_152
    assert settings.follow == "poll"
    assert settings.metrics_address == "127.0.0.1:9797"
    assert settings.grace_period_s == 30.0
    assert settings.plugins == ("my_company.wazuh:TicketIntegration",)
    assert settings.for_integration("virustotal") == IntegrationSettings(
        rate_limits=(RateLimit(4, 60.0), RateLimit(500, 86400.0)),
        concurrency=2,
        queue_size=50,
        max_retry_age_s=172_800.0,
        max_backoff_s=600.0,
        initial_backoff_s=0.5,
        retry=True,
        cache_ttl_s=86_400.0,
        api_version="v3",
    )
    assert settings.for_integration("slack") == IntegrationSettings(
        rate_limits=(RateLimit(1, 1.0),), retry=False
    )
    assert settings.for_integration("pagerduty") == IntegrationSettings()


def test_an_absolute_state_dir_is_kept(tmp_path: Path) -> None:
    settings = load_text(tmp_path, 'state_dir = "/srv/integrator"\n')

    assert settings.resolved_state_dir(Path("/var/ossec")) == Path("/srv/integrator")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4/minute", RateLimit(4, 60.0)),
        ("4/minutes", RateLimit(4, 60.0)),
        ("4/min", RateLimit(4, 60.0)),
        ("4/m", RateLimit(4, 60.0)),
        ("10/s", RateLimit(10, 1.0)),
        ("10/sec", RateLimit(10, 1.0)),
        ("10/second", RateLimit(10, 1.0)),
        ("100/hour", RateLimit(100, 3600.0)),
        ("100/h", RateLimit(100, 3600.0)),
        ("500/day", RateLimit(500, 86400.0)),
        ("500/days", RateLimit(500, 86400.0)),
        (" 500 / Day ", RateLimit(500, 86400.0)),
    ],
)
def test_rate_limit_spellings(tmp_path: Path, text: str, expected: RateLimit) -> None:
    settings = load_text(tmp_path, f'[integrations.slack]\nrate_limit = "{text}"\n')

    assert settings.for_integration("slack").rate_limits == (expected,)


def test_an_empty_rate_limit_list_means_explicitly_unlimited(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "[integrations.virustotal]\nrate_limit = []\n")

    assert settings.for_integration("virustotal").rate_limits == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ('"30s"', 30.0),
        ('"90m"', 5400.0),
        ('"24h"', 86400.0),
        ('"2d"', 172800.0),
        ("45", 45.0),
        ("2.5", 2.5),
        ('"1.5h"', 5400.0),
        ('"250ms"', 0.25),
    ],
)
def test_duration_spellings(tmp_path: Path, text: str, seconds: float) -> None:
    assert load_text(tmp_path, f"grace_period = {text}\n").grace_period_s == seconds


@pytest.mark.parametrize(("text", "count"), [('"auto"', None), ("0", 0), ("2", 2)])
def test_http_processes(tmp_path: Path, text: str, count: int | None) -> None:
    assert load_text(tmp_path, f"http_processes = {text}\n").http_processes == count


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        (
            "colour = 1\n",
            "etc/integrator.toml:1: colour: unknown key (expected one of: state_dir, "
            "max_line_bytes, follow, metrics_address, grace_period, http_processes, plugins)",
        ),
        (
            'max_line_bytes = "1M"\n',
            "etc/integrator.toml:1: max_line_bytes: '1M' is not an integer",
        ),
        ("max_line_bytes = 10\n", "etc/integrator.toml:1: max_line_bytes: 10 is below 1024"),
        (
            "\nhttp_processes = -1\n",
            'etc/integrator.toml:2: http_processes: -1 is not "auto" or a number of processes '
            "(0 or more)",
        ),
        (
            'http_processes = "two"\n',
            "etc/integrator.toml:1: http_processes: 'two' is not \"auto\" or a number of "
            "processes (0 or more)",
        ),
        (
            "max_line_bytes = true\n",
            "etc/integrator.toml:1: max_line_bytes: True is not an integer",
        ),
        (
            'follow = "inotify"\n',
            "etc/integrator.toml:1: follow: 'inotify' is not one of 'auto', 'poll'",
        ),
        (
            'metrics_address = "9797"\n',
            "etc/integrator.toml:1: metrics_address: '9797' is not 'host:port' "
            "(like '127.0.0.1:9797')",
        ),
        (
            'metrics_address = "localhost:99999"\n',
            "etc/integrator.toml:1: metrics_address: 'localhost:99999' is not 'host:port' "
            "(like '127.0.0.1:9797')",
        ),
        (
            'grace_period = "soon"\n',
            "etc/integrator.toml:1: grace_period: 'soon' is not a duration (a number of seconds, "
            "or like '30s', '90m', '24h', '2d')",
        ),
        ("grace_period = -1\n", "etc/integrator.toml:1: grace_period: -1 is negative"),
        (
            'plugins = "a:B"\n',
            "etc/integrator.toml:1: plugins: 'a:B' is not a list of 'module:Class' strings",
        ),
        ('plugins = ["a.b"]\n', "etc/integrator.toml:1: plugins: 'a.b' is not 'module:Class'"),
        ("state_dir = 3\n", "etc/integrator.toml:1: state_dir: 3 is not a non-empty string"),
        (
            '\n[integrations.slack]\nrate_limit = "4/fortnight"\n',
            "etc/integrator.toml:3: integrations.slack.rate_limit: '4/fortnight' is not a rate "
            "limit (like '4/minute', '10/s', '100/hour', '500/day')",
        ),
        (
            '[integrations.slack]\nrate_limit = "0/s"\n',
            "etc/integrator.toml:2: integrations.slack.rate_limit: '0/s' is not a rate "
            "limit (like '4/minute', '10/s', '100/hour', '500/day')",
        ),
        (
            "[integrations.slack]\nrate_limit = [4]\n",
            "etc/integrator.toml:2: integrations.slack.rate_limit: 4 is not a rate limit "
            "string (like '4/minute')",
        ),
        (
            "[integrations.slack]\nconcurrency = 0\n",
            "etc/integrator.toml:2: integrations.slack.concurrency: 0 is below 1",
        ),
        (
            '[integrations.slack]\nretry = "no"\n',
            "etc/integrator.toml:2: integrations.slack.retry: 'no' is not true or false",
        ),
        (
            '[integrations.slack]\nmax_backoff = "0s"\n',
            "etc/integrator.toml:2: integrations.slack.max_backoff: '0s' must be longer than zero",
        ),
        (
            '[integrations.slack]\ninitial_backoff = "10m"\n',
            "etc/integrator.toml:2: integrations.slack.initial_backoff: initial_backoff (600s) "
            "exceeds max_backoff (300s)",
        ),
        (
            '[integrations.slack]\napi_version = "v3"\n',
            "etc/integrator.toml:2: integrations.slack.api_version: "
            "only virustotal has API versions",
        ),
        (
            '[integrations.virustotal]\napi_version = "v4"\n',
            "etc/integrator.toml:2: integrations.virustotal.api_version: 'v4' is not one of v2, v3",
        ),
        (
            "[integrations.virustotal]\ncolor = 1\n",
            "etc/integrator.toml:2: integrations.virustotal.color: unknown key (expected one of: "
            "rate_limit, concurrency, queue_size, max_retry_age, max_backoff, initial_backoff, "
            "retry, cache_ttl, api_version, ca_file, client_cert, client_key, template,"
            " summary_template, subject_template, html_template, throttle, digest, filter)",
        ),
        (
            "[integrations.slak]\nretry = true\n",
            "etc/integrator.toml:1: integrations.slak: 'slak' is not a supported integration name",
        ),
        (
            "integrations = 3\n",
            "etc/integrator.toml:1: integrations: must be a table of [integrations.<name>]",
        ),
        (
            "[integrations]\nslack = 3\n",
            "etc/integrator.toml:2: integrations.slack: must be a table",
        ),
        (
            "integrations.pagerduty.concurrency = 0\n",
            "etc/integrator.toml:1: integrations.pagerduty.concurrency: 0 is below 1",
        ),
    ],
)
def test_bad_settings_name_file_line_and_key(tmp_path: Path, text: str, issue: str) -> None:
    assert issues_of(tmp_path, text) == [issue]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
grace_period = "x"

[integrations.slack]
concurrency = 0

[integrations."custom-tickets"]
# a comment
queue_size = 0
"""
    assert issues_of(tmp_path, text) == [
        "etc/integrator.toml:1: grace_period: 'x' is not a duration (a number of seconds, "
        "or like '30s', '90m', '24h', '2d')",
        "etc/integrator.toml:4: integrations.slack.concurrency: 0 is below 1",
        "etc/integrator.toml:8: integrations.custom-tickets.queue_size: 0 is below 1",
    ]


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    assert issues_of(tmp_path, "a = 1\n[integrations.slack\nretry = true\n") == [
        "etc/integrator.toml:2: TOML syntax error: Expected ']' at the end of a table "
        "declaration (column 20)"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, display_path=SHOWN)  # a directory

    assert str(caught.value) == "etc/integrator.toml: cannot read: Is a directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "integrator.toml"
    path.write_bytes(b"state_dir = '\xff'\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(path, display_path=SHOWN)

    assert str(caught.value) == "etc/integrator.toml: cannot read: not valid UTF-8"


@pytest.mark.parametrize("value", ["[" * 5000 + "]" * 5000, "{a = " * 5000 + "1" + "}" * 5000])
def test_deeply_nested_values_are_a_syntax_error_not_a_crash(tmp_path: Path, value: str) -> None:
    assert issues_of(tmp_path, f"x = {value}\n") == [
        "etc/integrator.toml: TOML syntax error: values nested too deeply"
    ]
