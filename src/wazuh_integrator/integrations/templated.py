"""The templates of one output: the ones configured in integrator.toml, else
the shipped defaults; a failure on an alert as a
:class:`~wazuh_integrator.errors.Permanent` error naming the template's file
and line, so that the alert is dead-lettered with the reason; and whether a
file changed since it was compiled, so that a reload compiles it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wazuh_integrator.errors import Permanent
from wazuh_integrator.templating import TemplateError, TemplateFormat

if TYPE_CHECKING:
    from wazuh_integrator.templating import Template

__all__ = ["OutputTemplates"]

T = TypeVar("T")


class OutputTemplates:
    """The templates of one block, by role (``template``, ``subject_template``...).

    ``defaults`` names the shipped templates the output renders when none is
    configured: they are compiled here, at start-up, like configured ones. An
    output with neither (Slack without a template) never imports Jinja2.
    """

    def __init__(
        self,
        formats: Mapping[str, TemplateFormat],
        configured: Mapping[str, Path],
        home: Path,
        defaults: Iterable[str] = (),
    ) -> None:
        self._templates: dict[str, Template] = {}
        self._errors: dict[str, TemplateError] = {}
        self._files: dict[str, Path] = {}
        self._compile_defaults(defaults)
        if not configured:
            return
        from wazuh_integrator.templating import load_template

        for role, path in configured.items():
            template_format = formats.get(role)
            if template_format is None:
                continue  # refused by the configuration reader; never reached by run
            self._files[role] = home / path
            try:
                self._templates[role] = load_template(
                    home / path, shown=str(path), template_format=template_format
                )
            except TemplateError as error:
                # check-config and run refuse this; a file changed since is
                # reported on each alert, which is then dead-lettered.
                self._errors[role] = error

    @staticmethod
    def _compile_defaults(names: Iterable[str]) -> None:
        names = tuple(names)
        if not names:
            return
        from wazuh_integrator.templating import default_template

        for name in names:
            default_template(name)  # cached: the first alert finds it compiled

    def configured(self, role: str) -> bool:
        """Whether integrator.toml names a template for ``role``."""
        return role in self._files

    def template(self, role: str, default: str) -> Template:
        """The template configured for ``role``, else the shipped ``default``;
        Permanent when the configured one did not compile."""
        template = self._templates.get(role)
        if template is not None:
            return template
        error = self._errors.get(role)
        if error is not None:
            raise Permanent(f"template {error}")
        from wazuh_integrator.templating import default_template

        return default_template(default)

    def _through(self, role: str, default: str, render: Callable[[Template], T]) -> T:
        """``render`` with the ``role`` template, else ``default``; a failure is Permanent."""
        template = self.template(role, default)
        try:
            return render(template)
        except TemplateError as failed:
            raise Permanent(f"template {failed}") from None

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
        return self._through(
            role,
            default,
            lambda template: template.render(alert=alert, options=options, integration=integration),
        )

    def render_json_text(
        self,
        role: str,
        default: str,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        integration: str,
    ) -> tuple[str, Any]:
        """The JSON text the template wrote, and its value; not JSON is Permanent."""
        return self._through(
            role,
            default,
            lambda template: template.render_json_text(
                alert=alert, options=options, integration=integration
            ),
        )

    def render_json_body(
        self,
        role: str,
        default: str,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None,
        integration: str,
    ) -> str:
        """The JSON text the template wrote, for a request body (see
        :meth:`Template.render_json_body`); not JSON is Permanent."""
        return self._through(
            role,
            default,
            lambda template: template.render_json_body(
                alert=alert, options=options, integration=integration
            ),
        )

    def changed_on_disk(self) -> list[str]:
        """The configured template files whose text is no longer the one
        compiled (edited in place, or unreadable now), by their shown name.

        Read on a reload only: the same path in integrator.toml says nothing
        about what the file holds, and an editor may keep its mtime."""
        if not self._files:
            return []
        from wazuh_integrator.templating import read_template_text

        changed = []
        for role, path in self._files.items():
            compiled = self._templates.get(role)
            shown = compiled.shown if compiled is not None else self._errors[role].path
            try:
                text = read_template_text(path, shown)
            except TemplateError:
                text = None
            if compiled is None or text != compiled.source:
                changed.append(shown)
        return changed
