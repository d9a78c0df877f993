"""What callers name without compiling a template: the formats and the error.

Apart from :mod:`.template` so that naming them does not import Jinja2: a
daemon whose outputs use no template never loads it.
"""

from __future__ import annotations

from typing import Literal

from wazuh_integrator.errors import IntegratorError

__all__ = ["FORMATS", "TemplateError", "TemplateFormat"]

TemplateFormat = Literal["text", "html", "json", "markdownv2"]
FORMATS: tuple[TemplateFormat, ...] = ("text", "html", "json", "markdownv2")


class TemplateError(IntegratorError):
    """A template that does not compile or did not render, located to its line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
