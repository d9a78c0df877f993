"""The templates of an output that is not a webhook (email): the ones
configured in integrator.toml, else the shipped defaults, and a failure on an
alert as a :class:`~wazuh_integrator.errors.Permanent` error naming the
template's file and line, so that the alert is dead-lettered with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wazuh_integrator.errors import Permanent
from wazuh_integrator.templating import (
    Template,
    TemplateError,
    TemplateFormat,
    default_template,
    load_template,
)

__all__ = ["OutputTemplates"]


class OutputTemplates:
    """The templates of one block, by role (``template``, ``subject_template``...)."""

    def __init__(
        self,
        formats: Mapping[str, TemplateFormat],
        configured: Mapping[str, Path],
        home: Path,
    ) -> None:
        self._templates: dict[str, Template] = {}
        self._errors: dict[str, TemplateError] = {}
        for role, path in configured.items():
            template_format = formats.get(role)
            if template_format is None:
                continue  # refused by the configuration reader; never reached by run
            try:
                self._templates[role] = load_template(
                    home / path, shown=str(path), template_format=template_format
                )
            except TemplateError as error:
                # check-config and run refuse this; a file changed since is
                # reported on each alert, which is then dead-lettered.
                self._errors[role] = error

    def render(
        self,
        role: str,
        default: str,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        integration: str,
    ) -> str:
        """``alert`` through the ``role`` template, else ``default``; a failure is Permanent."""
        error = self._errors.get(role)
        if error is not None:
            raise Permanent(f"template {error}")
        template = self._templates.get(role) or default_template(default)
        try:
            return template.render(alert=alert, options=options, integration=integration)
        except TemplateError as failed:
            raise Permanent(f"template {failed}") from None
