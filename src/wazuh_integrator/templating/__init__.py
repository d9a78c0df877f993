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
"""

from wazuh_integrator.templating.template import (
    FORMATS,
    Template,
    TemplateError,
    TemplateFormat,
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
