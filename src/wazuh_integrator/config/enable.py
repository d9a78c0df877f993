"""Which valid blocks can run, and why the others cannot.

As in stock Wazuh, a block with an unsupported name, a missing required key
or a missing script is disabled on its own: the other blocks still run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from wazuh_integrator.config.models import (
    DisabledIntegration,
    IntegrationBlock,
    OssecConfig,
    WazuhPaths,
)
from wazuh_integrator.integrations.registry import BUILTINS, CUSTOM_PREFIX, PluginError, Registry

__all__ = ["resolve_integrations"]

log = logging.getLogger(__name__)


def _no_problem(block: IntegrationBlock) -> str | None:
    del block
    return None


@dataclass(frozen=True)
class _Needs:
    required: tuple[str, ...]
    needs_script: bool
    block_problem: Callable[[IntegrationBlock], str | None] = _no_problem


# The stock rule (REFERENCE.md), used only when a class cannot be imported, so
# that check-config still judges the block; the daemon then reports the import.
_STOCK_NEEDS = {
    "slack": _Needs(("hook_url",), needs_script=False),
    "shuffle": _Needs(("hook_url",), needs_script=False),
    "pagerduty": _Needs(("api_key",), needs_script=False),
    "virustotal": _Needs(("api_key",), needs_script=False),
    "maltiverse": _Needs(("hook_url", "api_key"), needs_script=False),
}
_SCRIPT_NEEDS = _Needs((), needs_script=True)


def resolve_integrations(
    config: OssecConfig, paths: WazuhPaths, registry: Registry
) -> tuple[list[IntegrationBlock], list[DisabledIntegration]]:
    """Split the valid blocks of ``config`` into enabled ones and disabled ones."""
    enabled: list[IntegrationBlock] = []
    disabled: list[DisabledIntegration] = []
    for block in config.blocks:
        reason = _disabled_reason(block, paths, registry)
        if reason is None:
            enabled.append(block)
        else:
            disabled.append(DisabledIntegration(block, reason))
    return enabled, disabled


def _disabled_reason(block: IntegrationBlock, paths: WazuhPaths, registry: Registry) -> str | None:
    if not registry.is_supported_name(block.name):
        return (
            f"'{block.name}' is not a supported integration "
            f"(use one of {', '.join(BUILTINS)}, or a name starting with '{CUSTOM_PREFIX}')"
        )
    needs = _needs_of(block, registry)
    missing = [key for key in needs.required if not getattr(block, key, None)]
    if missing:
        listed = " and ".join(f"<{key}>" for key in missing)
        return f"missing {listed}, required by {block.name}"
    if needs.needs_script:
        return _script_problem(block.name, paths)
    try:
        return needs.block_problem(block)
    except Exception as exc:  # a plugin's check may fail in any way: name it, do not crash
        return f"{block.name} could not check this block: {type(exc).__name__}"


def _needs_of(block: IntegrationBlock, registry: Registry) -> _Needs:
    name = block.name
    try:
        cls = registry.resolve(name)
    except PluginError as exc:
        log.debug("Judging '%s' by the stock rules: %s", name, exc)
        return _STOCK_NEEDS.get(name, _SCRIPT_NEEDS)
    if cls is None:  # is_supported_name said yes; keep the stock rule
        return _STOCK_NEEDS.get(name, _SCRIPT_NEEDS)
    return _Needs(
        tuple(cls.required),
        cls.needs_script,
        cls.block_problem,
    )


def _script_problem(name: str, paths: WazuhPaths) -> str | None:
    script = paths.integrations_dir / name
    shown = f"integrations/{name}"
    if not script.exists():
        return f"script {shown} not found in {paths.integrations_dir}"
    if not script.is_file():
        return f"script {shown} is not a regular file"
    if not os.access(script, os.X_OK):
        return f"script {shown} is not executable (chmod 750 {script})"
    return None
