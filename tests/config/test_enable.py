from __future__ import annotations

import pytest
from tests.config.wazuh_home import WazuhHome, integration_block, ossec_conf

from wazuh_integrator.config.enable import resolve_integrations
from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
from wazuh_integrator.config.ossec import read_ossec_conf
from wazuh_integrator.integrations.base import Integration
from wazuh_integrator.integrations.registry import PluginError, Registry

PLUGIN = "tests.config.sample_plugin:TicketIntegration"


def resolve(
    home: WazuhHome, *blocks: str, registry: Registry | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    home.write_config(ossec_conf(*blocks))
    config = read_ossec_conf(home.ossec_conf)
    assert config.errors == ()
    paths = WazuhPaths.from_home(home.root)
    enabled, disabled = resolve_integrations(config, paths, registry or Registry((PLUGIN,)))
    return [b.key for b in enabled], [(off.block.key, off.reason) for off in disabled]


def test_complete_blocks_are_enabled(home: WazuhHome) -> None:
    home.add_script("custom-tickets")
    enabled, disabled = resolve(
        home,
        integration_block("slack", hook_url="https://hooks.slack.com/services/x"),
        integration_block("pagerduty", api_key="k"),
        integration_block("shuffle", hook_url="https://shuffle.example/api/v1/hooks/x"),
        integration_block("virustotal", api_key="k"),
        integration_block("maltiverse", hook_url="https://api.maltiverse.com", api_key="k"),
        integration_block("custom-tickets"),
        integration_block("custom-ticket", api_key="k"),  # the in-process plugin: no script
    )

    assert enabled == [
        "slack#0",
        "pagerduty#1",
        "shuffle#2",
        "virustotal#3",
        "maltiverse#4",
        "custom-tickets#5",
        "custom-ticket#6",
    ]
    assert disabled == []


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (
            integration_block("slak", hook_url="https://x"),
            "'slak' is not a supported integration (use one of slack, pagerduty, shuffle, "
            "virustotal, maltiverse, webhook, teams, telegram, discord, jira, email, syslog, "
            "opsgenie, thehive, or a name starting with 'custom-')",
        ),
        (integration_block("slack"), "missing <hook_url>, required by slack"),
        (integration_block("shuffle", api_key="k"), "missing <hook_url>, required by shuffle"),
        (
            integration_block("pagerduty", hook_url="https://x"),
            "missing <api_key>, required by pagerduty",
        ),
        (integration_block("virustotal"), "missing <api_key>, required by virustotal"),
        (
            integration_block("maltiverse"),
            "missing <hook_url> and <api_key>, required by maltiverse",
        ),
        (integration_block("custom-ticket"), "missing <api_key>, required by custom-ticket"),
    ],
)
def test_incomplete_or_unknown_blocks_are_disabled_with_the_reason(
    home: WazuhHome, block: str, reason: str
) -> None:
    enabled, disabled = resolve(home, integration_block("custom-ticket", api_key="k"), block)

    assert enabled == ["custom-ticket#0"]
    assert [r for _, r in disabled] == [reason]


def test_a_missing_script_disables_the_block(home: WazuhHome) -> None:
    _, disabled = resolve(home, integration_block("custom-nope"))

    assert disabled == [
        (
            "custom-nope#0",
            f"script integrations/custom-nope not found in {home.root / 'integrations'}",
        )
    ]


def test_a_script_that_is_not_executable_disables_the_block(home: WazuhHome) -> None:
    script = home.add_script("custom-x", executable=False)

    _, disabled = resolve(home, integration_block("custom-x"))

    assert disabled == [
        ("custom-x#0", f"script integrations/custom-x is not executable (chmod 750 {script})")
    ]


def test_a_directory_is_not_a_script(home: WazuhHome) -> None:
    (home.root / "integrations" / "custom-x").mkdir()

    _, disabled = resolve(home, integration_block("custom-x"))

    assert disabled == [("custom-x#0", "script integrations/custom-x is not a regular file")]


class UnloadableRegistry(Registry):
    """A registry whose built-in modules cannot be imported (a broken install)."""

    def resolve(self, name: str) -> type[Integration] | None:
        raise PluginError(f"cannot load integration for {name!r}: No module named 'x'")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (integration_block("slack"), ["missing <hook_url>, required by slack"]),
        (integration_block("slack", hook_url="https://x"), []),
        (
            integration_block("maltiverse", api_key="k"),
            ["missing <hook_url>, required by maltiverse"],
        ),
        (integration_block("custom-x"), ["script integrations/custom-x not found in {dir}"]),
    ],
)
def test_unloadable_classes_are_judged_by_the_stock_rules(
    home: WazuhHome, block: str, expected: list[str]
) -> None:
    registry = UnloadableRegistry(entry_point_plugins=False)

    _, disabled = resolve(home, block, registry=registry)

    directory = home.root / "integrations"
    assert [r for _, r in disabled] == [e.format(dir=directory) for e in expected]


def test_enabled_blocks_keep_their_identity(home: WazuhHome) -> None:
    home.write_config(ossec_conf(integration_block("pagerduty", api_key="k", level="3")))
    config = read_ossec_conf(home.ossec_conf)

    enabled, _ = resolve_integrations(config, WazuhPaths.from_home(home.root), Registry())

    assert enabled == list(config.blocks)
    assert isinstance(enabled[0], IntegrationBlock)


def test_an_integration_can_refuse_a_block_and_a_broken_check_is_named(home: WazuhHome) -> None:
    registry = Registry(("tests.config.sample_plugin:PickyIntegration",))
    enabled, disabled = resolve(
        home,
        integration_block("custom-picky", options='{"queue": "q1"}'),
        integration_block("custom-picky"),
        integration_block("custom-picky", api_key="never-shown", options='{"queue": 0}'),
        registry=registry,
    )
    assert enabled == ["custom-picky#0"]
    assert disabled == [
        ("custom-picky#1", 'options: "queue" is required'),
        ("custom-picky#2", "custom-picky could not check this block: ZeroDivisionError"),
    ]
