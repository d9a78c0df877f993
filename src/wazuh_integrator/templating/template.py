"""Compiling and rendering one template, and every way that can fail.

Every failure is a :class:`TemplateError` carrying the template's file and
line: a syntax error when it is compiled, a missing field, a refused reach
into Python internals or a filter's complaint when it is rendered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from types import BuiltinMethodType, TracebackType
from typing import Any, NoReturn

import jinja2
import orjson
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from wazuh_integrator.templating import filters
from wazuh_integrator.templating.basics import FORMATS, TemplateError, TemplateFormat

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

_SUFFIX_FORMATS: dict[str, TemplateFormat] = {
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".md2": "markdownv2",
}
# A template larger than this is a mistake (a log file named by accident).
MAX_TEMPLATE_BYTES = 256 * 1024
_REFUSED = "refused by the sandbox: "
_DEFAULTS = files("wazuh_integrator.templating") / "defaults"


class _MissingValue(jinja2.StrictUndefined):
    """Strict, and says which object lacked which field, so that the error can
    name the field by its path in the alert (see :func:`_field_path`)."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_exception is SecurityError:
            raise SecurityError(f"{_REFUSED}{self._undefined_message}")
        raise _MissingField(self._undefined_obj, self._undefined_name)


# Jinja2 binds every failing operation (``__str__``, ``__getitem__``, ``__add__``,
# ...) to its own ``_fail_with_undefined_error``: point them all at ours.
for _cls in (jinja2.StrictUndefined, jinja2.Undefined):
    for _name, _value in vars(_cls).items():
        if _value is _cls._fail_with_undefined_error and _name not in vars(_MissingValue):
            setattr(_MissingValue, _name, _MissingValue._fail_with_undefined_error)


class _MissingField(jinja2.UndefinedError):
    def __init__(self, owner: Any, name: Any) -> None:
        super().__init__(f"{name!r} is undefined")
        self.owner = owner
        self.name = name


def _escaper(escape: Callable[[Any], str]) -> Callable[[Any], Any]:
    """A ``finalize`` that escapes every ``{{ }}`` value not already marked safe."""

    def finalize(value: Any) -> Any:
        if isinstance(value, Markup):
            return value
        if isinstance(value, jinja2.Undefined):
            str(value)  # raises, naming the field
        return escape(value)

    return finalize


# What JSON escapes inside a string: most values hold none of it.
_JSON_SPECIAL = re.compile(r'[\x00-\x1f"\\\u2028\u2029]')


def _json_string_content(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if _JSON_SPECIAL.search(text) is None:
        return text
    return orjson.dumps(text).decode()[1:-1]


def _json_finalize(value: Any) -> Any:
    """The ``json`` format's escaper with a short way for what alerts hold
    most: a string with nothing to escape, or a number (its text never needs
    escaping). Everything else takes :func:`_escaper`'s way."""
    kind = type(value)
    if kind is str:
        return value if _JSON_SPECIAL.search(value) is None else _json_string_content(value)
    if kind is int or kind is float or kind is Markup:
        return value
    return _json_escaper(value)


_json_escaper = _escaper(_json_string_content)

_FINALIZERS: dict[TemplateFormat, Callable[[Any], Any] | None] = {
    "text": None,
    "html": None,
    "json": _json_finalize,
    "markdownv2": _escaper(filters.markdownv2),
}


# Names a template may mean as a dict's method rather than its key (alert.get).
_DICT_ATTRIBUTES = frozenset(dir(dict))
_ABSENT = object()
# Dict methods that only read: the sandbox would allow them after its checks.
_READING_DICT_METHODS = frozenset({"get", "keys", "values", "items"})


class _AlertEnvironment(SandboxedEnvironment):
    """The sandbox, with a short way to the common case: ``alert.rule.level``
    is a key of a dict. Jinja2 would first try it as an attribute and pay an
    AttributeError for every step; a key is data, never a way to Python's
    internals, so the sandbox has nothing to check on it."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            if attribute not in _DICT_ATTRIBUTES:
                # A sentinel, not KeyError: raising costs more than the lookup.
                found = obj.get(attribute, _ABSENT)
                if found is _ABSENT:
                    return self.undefined(obj=obj, name=attribute)
                return found
            if attribute in _READING_DICT_METHODS:
                return getattr(obj, attribute)
        return super().getattr(obj, attribute)

    def call(self, context: Any, function: Any, /, *args: Any, **kwargs: Any) -> Any:
        if (
            type(function) is BuiltinMethodType
            and type(function.__self__) is dict
            and function.__name__ in _READING_DICT_METHODS
        ):
            return function(*args, **kwargs)
        return super().call(context, function, *args, **kwargs)


def _is_mapping(value: Any) -> bool:
    """Jinja2's ``mapping`` test, with a short way for a dict: the abstract
    base class check costs half a microsecond on every alert field tested."""
    return type(value) is dict or isinstance(value, Mapping)


@functools.cache
def _environment(template_format: TemplateFormat) -> SandboxedEnvironment:
    environment = _AlertEnvironment(
        autoescape=template_format == "html",
        undefined=_MissingValue,
        finalize=_FINALIZERS[template_format],
        keep_trailing_newline=False,
        auto_reload=False,
    )
    environment.filters.update(
        level_name=filters.level_name,
        rule_level=filters.rule_level,
        mitre=filters.mitre,
        truncate=filters.truncate,
        iso_time=filters.iso_time,
        alert_link=filters.alert_link,
        suppressed_text=filters.suppressed_text,
        digest_title=filters.digest_title,
        digest_lines=filters.digest_lines,
        markdownv2=filters.markdownv2,
        markdownv2_code=filters.markdownv2_code,
    )
    environment.tests["mapping"] = _is_mapping
    if template_format != "html":  # HTML keeps Jinja2's tojson, which escapes <, > and &
        environment.filters["tojson"] = filters.to_json
    return environment


class Template:
    """A compiled template; :meth:`render` turns an alert into text."""

    def __init__(
        self,
        compiled: jinja2.Template,
        shown: str,
        template_format: TemplateFormat,
        source: str = "",
        *,
        writes_json: bool = False,
    ):
        self._compiled = compiled
        self._globals = dict(compiled.globals)
        self.shown = shown
        self.format = template_format
        # The text it was compiled from: a reload compares it with the file's.
        self.source = source
        # Its only output is one `| tojson` (see _writes_json_by_construction).
        self.writes_json = writes_json

    def render(
        self,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        integration: str = "",
    ) -> str:
        """The text for ``alert``. Raises :class:`TemplateError` naming the line."""
        values = {
            **self._globals,
            "alert": alert,
            "options": options or {},
            "integration": integration,
        }
        try:
            return self._render(values)
        except SecurityError as exc:
            message = str(exc)
            if not message.startswith(_REFUSED):
                message = f"{_REFUSED}{message}"
            raise self._error(exc, message) from None
        except _MissingField as exc:
            raise self._error(exc, f"{_field_path(values, exc)} is missing") from None
        except (jinja2.TemplateError, filters.FilterError, ValueError, TypeError) as exc:
            raise self._error(exc, f"{type(exc).__name__}: {exc}") from None
        except (ArithmeticError, LookupError, AttributeError) as exc:
            raise self._error(exc, f"{type(exc).__name__}: {exc}") from None

    def _render(self, values: dict[str, Any]) -> str:
        """What jinja2's ``Template.render`` does, less the two copies it makes
        of the values and the globals on every call: ``values`` already holds
        the globals and is this render's alone, so the context may share it.
        The context is made as ``Template.new_context`` makes it, less the set
        of global names, which only ``{% import %}`` reads (unavailable here
        without a loader): about 0.5 µs of every render."""
        compiled = self._compiled
        environment = compiled.environment
        context = environment.context_class(environment, values, compiled.name, compiled.blocks)
        try:
            return environment.concat(compiled.root_render_func(context))
        except Exception:
            # Points the traceback at the template's lines, for _template_line.
            environment.handle_exception()

    def render_json(
        self,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        integration: str = "",
    ) -> Any:
        """The rendered text read as JSON; TemplateError when it is not JSON."""
        return self.render_json_text(alert=alert, options=options, integration=integration)[1]

    def render_json_text(
        self,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        integration: str = "",
    ) -> tuple[str, Any]:
        """The rendered text and its value as JSON; TemplateError when it is not JSON."""
        text = self.render(alert=alert, options=options, integration=integration)
        try:
            return text, orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            line = text.count("\n", 0, exc.pos) + 1
            raise TemplateError(
                self.shown,
                None,
                f"rendered text is not JSON ({exc.msg} at its line {line}, column {exc.colno}):"
                " write values with '| tojson' or inside quotes",
            ) from None

    def render_json_body(
        self,
        *,
        alert: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        integration: str = "",
    ) -> str:
        """The rendered text, which must be JSON, for a request body. A
        template that writes JSON by construction (:attr:`writes_json`) is
        not read back; any other is, and TemplateError says where it is not
        JSON."""
        if self.writes_json:
            return self.render(alert=alert, options=options, integration=integration)
        return self.render_json_text(alert=alert, options=options, integration=integration)[0]

    def _error(self, exc: BaseException, message: str) -> TemplateError:
        return TemplateError(self.shown, _template_line(exc.__traceback__, self.shown), message)


# What may stand around the one output of a template that writes JSON by
# construction: no other output, and nothing that renders another template.
_OTHER_SOURCES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def _writes_json_by_construction(environment: SandboxedEnvironment, text: str) -> bool:
    """Whether everything ``text`` writes is one ``| tojson`` of ours, written
    once: statements, then ``{{ value | tojson }}`` at the top level, with at
    most white space beside it. Our ``tojson`` writes what orjson wrote, so
    the text is JSON whatever the alert holds, and reading it back to check
    (about a fifth of rendering the shipped Slack template) proves nothing."""
    if environment.filters.get("tojson") is not filters.to_json:
        return False  # html keeps Jinja2's own
    tree = environment.parse(text)
    outputs = list(tree.find_all(nodes.Output))
    if len(outputs) != 1 or not any(node is outputs[0] for node in tree.body):
        return False
    if any(True for _ in tree.find_all(_OTHER_SOURCES)):
        return False
    written = [
        node
        for node in outputs[0].nodes
        if not (isinstance(node, nodes.TemplateData) and not node.data.strip())
    ]
    return (
        len(written) == 1 and isinstance(written[0], nodes.Filter) and written[0].name == "tojson"
    )


def _template_line(trace: TracebackType | None, shown: str) -> int | None:
    """The template line where rendering failed: Jinja2 rewrites the traceback
    so that the template's frames carry its file name and line numbers."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == shown:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _field_path(roots: Mapping[str, Any], missing: _MissingField) -> str:
    """``alert.rule.mitre`` for a field missing from ``alert["rule"]``: the
    object that lacked it is found again by identity, on this error path only."""
    name = missing.name if isinstance(missing.name, str) else f"[{missing.name!r}]"
    if missing.owner is jinja2.utils.missing:
        return name
    found = _find(roots, missing.owner, (), depth=8)
    segments = (*found, name) if found is not None else ("(a value)", name)
    return "".join(s if s.startswith("[") else f".{s}" for s in segments).removeprefix(".")


def _find(value: Any, target: Any, path: tuple[str, ...], depth: int) -> tuple[str, ...] | None:
    if value is target and path:
        return path
    if depth == 0:
        return None
    items: Any = ()
    if isinstance(value, Mapping):
        items = ((str(key), item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"[{index}]", item) for index, item in enumerate(value))
    for key, item in items:
        found = _find(item, target, (*path, key), depth - 1)
        if found is not None:
            return found
    return None


def _format_for(name: str) -> TemplateFormat:
    stem = name.removesuffix(".j2").removesuffix(".jinja")
    return _SUFFIX_FORMATS.get(Path(stem).suffix.lower(), "text")


def template_from_text(
    text: str, shown: str, template_format: TemplateFormat | None = None
) -> Template:
    """Compile ``text``; ``shown`` names it in errors. The format defaults to
    the one its name says (``.json.j2`` json, ``.html.j2`` html, else text)."""
    chosen = template_format or _format_for(shown)
    environment = _environment(chosen)
    try:
        code = environment.compile(text, name=shown, filename=shown)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(shown, exc.lineno, f"syntax error: {exc.message}") from None
    # A plain dict, not Jinja2's ChainMap: every render copies the globals, and
    # copying a ChainMap costs a fifth of rendering a small template.
    template_globals = dict(environment.make_globals(None))
    compiled = environment.template_class.from_code(environment, code, template_globals, None)
    writes_json = _writes_json_by_construction(environment, text)
    return Template(compiled, shown, chosen, text, writes_json=writes_json)


def load_template(
    path: Path, *, shown: str | None = None, template_format: TemplateFormat | None = None
) -> Template:
    """Read and compile the template file at ``path``; ``shown`` is how errors
    name it (the path relative to the Wazuh home, say)."""
    name = shown if shown is not None else str(path)
    text = read_template_text(path, name)
    return template_from_text(text, name, template_format or _format_for(path.name))


def read_template_text(path: Path, shown: str) -> str:
    """The text of the template file at ``path``; TemplateError naming ``shown``
    when it cannot be read or is too large to be a template."""
    try:
        size = path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise TemplateError(shown, None, f"larger than {MAX_TEMPLATE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(shown, None, "cannot read: file not found") from None
    except UnicodeDecodeError:
        raise TemplateError(shown, None, "cannot read: not valid UTF-8") from None
    except OSError as exc:
        raise TemplateError(shown, None, f"cannot read: {exc.strerror or exc}") from None


@functools.cache
def default_template(name: str) -> Template:
    """A shipped default (``slack.json.j2``, ``telegram.md2.j2``, ...), the
    templates that reproduce each output's message when none is configured."""
    source = _DEFAULTS / name
    if not source.is_file():
        raise TemplateError(name, None, "no such default template")
    text = source.read_text(encoding="utf-8")
    return template_from_text(text, f"<default {name}>", _format_for(name))
