"""Message templates: Jinja2 in a sandbox, for every output that sends text.

A template sees ``alert`` (the alert as read), ``options`` (the block's
``<options>``) and ``integration`` (the block's name). What it may reach is
limited by Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment`; a field it
names that the alert lacks is an error naming the field, never an empty string.

Each template has a format, which says how a value written with ``{{ }}`` is
escaped: ``text`` (not at all), ``html`` (HTML autoescape), ``json`` (as the
inside of a JSON string, so that ``"title": "{{ alert.rule.description }}"``
stays valid JSON whatever the description holds) and ``markdownv2``
(Telegram's MarkdownV2). ``| tojson`` writes a whole JSON value in ``json``
templates; ``| safe`` writes a value as is.

Naming :data:`FORMATS`, :class:`TemplateError` or :data:`TemplateFormat`
imports nothing more; the rest loads Jinja2 on first use (import those inside
the function that compiles or renders), so that a daemon whose outputs use no
template never pays for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from wazuh_integrator.templating.basics import FORMATS, TemplateError, TemplateFormat

if TYPE_CHECKING:
    from wazuh_integrator.templating.template import (
        Template,
        default_template,
        load_template,
        read_template_text,
        template_from_text,
    )

__all__ = [
    "FORMATS",
    "Template",
    "TemplateError",
    "TemplateFormat",
    "default_template",
    "load_template",
    "read_template_text",
    "template_from_text",
]

_COMPILING = frozenset(
    {"Template", "default_template", "load_template", "read_template_text", "template_from_text"}
)


def __getattr__(name: str) -> Any:
    # PEP 562: the Jinja2 side of the package, imported when first named.
    if name in _COMPILING:
        return getattr(importlib.import_module("wazuh_integrator.templating.template"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
