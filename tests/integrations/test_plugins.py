"""Python plugins: found as ``module:Class`` or through an entry point, used in
place of a script, and refused with a clear message when they are wrong.

Plugin modules are real files written into a directory put on ``sys.path``;
each test gives its modules fresh names so that no import is cached across tests.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.registry import ENTRY_POINT_GROUP, PluginError, Registry
from wazuh_integrator.integrations.script import ScriptIntegration

_counter = itertools.count()

PLUGIN_SOURCE = """\
from wazuh_integrator.integrations.base import Integration


class Hello(Integration):
    name = "custom-hello"
    required = ("hook_url",)

    async def send(self, alert):
        (self.context.state_dir / "sent").write_text(alert["id"])


class OtherHello(Hello):
    pass


class Unnamed(Integration):
    async def send(self, alert):
        pass


class NoPrefix(Integration):
    name = "hello"

    async def send(self, alert):
        pass


class BarePrefix(NoPrefix):
    name = "custom-"


class Abstract(Integration):
    name = "custom-abstract"


class NotAnIntegration:
    name = "custom-nope"


class Holder:
    class Inner(Hello):
        name = "custom-inner"


not_a_class = 42
"""

ModuleWriter = Callable[[str], str]


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "plugins"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in [name for name in sys.modules if name.startswith("wi_test_plugin_")]:
        del sys.modules[name]


@pytest.fixture
def write_module(plugin_path: Path) -> ModuleWriter:
    """Write ``source`` as a fresh module on ``sys.path``; return its name."""

    def write(source: str) -> str:
        name = f"wi_test_plugin_{next(_counter)}"
        (plugin_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


@pytest.fixture
def plugin_module(write_module: ModuleWriter) -> str:
    return write_module(PLUGIN_SOURCE)


def test_listed_plugin_resolves_instead_of_the_script(plugin_module: str) -> None:
    registry = Registry(plugins=(f"{plugin_module}:Hello",), entry_point_plugins=False)

    cls = registry.resolve("custom-hello")

    assert cls is not None
    assert cls.__module__ == plugin_module
    assert cls.__name__ == "Hello"
    assert cls.needs_script is False
    assert cls.required == ("hook_url",)
    assert "custom-hello" in registry.names()
    # Other custom names still run their scripts.
    assert registry.resolve("custom-anything-else") is ScriptIntegration


async def test_listed_plugin_delivers_in_process_with_no_script(
    plugin_module: str, tmp_path: Path
) -> None:
    registry = Registry(plugins=(f"{plugin_module}:Hello",), entry_point_plugins=False)
    cls = registry.resolve("custom-hello")
    assert cls is not None
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    block = IntegrationBlock(index=0, path="ossec.conf", line=1, name="custom-hello")
    context = IntegrationContext(
        home=tmp_path / "no-such-home", state_dir=state_dir, settings=IntegrationSettings()
    )

    await cls(block, context).send({"id": "1714558830.7", "rule": {"level": 3}})

    assert (state_dir / "sent").read_text() == "1714558830.7"


def test_dotted_class_path_is_followed(plugin_module: str) -> None:
    registry = Registry(plugins=(f"{plugin_module}:Holder.Inner",), entry_point_plugins=False)
    cls = registry.resolve("custom-inner")
    assert cls is not None and cls.__qualname__ == "Holder.Inner"


def test_the_same_class_listed_twice_is_fine(plugin_module: str) -> None:
    target = f"{plugin_module}:Hello"
    registry = Registry(plugins=(target, target), entry_point_plugins=False)
    assert registry.names().count("custom-hello") == 1


def test_two_classes_claiming_one_name_are_refused(plugin_module: str) -> None:
    with pytest.raises(PluginError) as caught:
        Registry(
            plugins=(f"{plugin_module}:Hello", f"{plugin_module}:OtherHello"),
            entry_point_plugins=False,
        )
    assert str(caught.value) == (
        f"plugin '{plugin_module}:OtherHello' claims the name 'custom-hello',"
        f" already taken by {plugin_module}:Hello"
    )


@pytest.mark.parametrize(
    ("attribute", "shown_name"),
    [("NoPrefix", "'hello'"), ("BarePrefix", "'custom-'"), ("Unnamed", "None")],
)
def test_plugin_without_a_custom_name_is_refused(
    plugin_module: str, attribute: str, shown_name: str
) -> None:
    target = f"{plugin_module}:{attribute}"
    with pytest.raises(PluginError) as caught:
        Registry(plugins=(target,), entry_point_plugins=False)
    assert str(caught.value) == (
        f"plugin '{target}' has the integration name {shown_name}: it must start with"
        " 'custom-' so that Wazuh accepts the <integration> block too"
    )


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("Missing", "cannot load integration '{t}': module '{m}' has no attribute 'Missing'"),
        (
            "Holder.Nope",
            "cannot load integration '{t}': module '{m}' has no attribute 'Holder.Nope'",
        ),
        ("NotAnIntegration", "'{t}' is not a subclass of Integration"),
        ("not_a_class", "'{t}' is not a subclass of Integration"),
        ("Abstract", "'{t}' does not implement send"),
    ],
)
def test_bad_class_gives_a_clear_error(plugin_module: str, attribute: str, expected: str) -> None:
    target = f"{plugin_module}:{attribute}"
    with pytest.raises(PluginError) as caught:
        Registry(plugins=(target,), entry_point_plugins=False)
    assert str(caught.value) == expected.format(t=target, m=plugin_module)


@pytest.mark.parametrize(
    "target",
    ["wi_test_plugin_hello", "wi_test_plugin_hello:", ":Hello", "", "  :  "],
)
def test_target_not_of_the_form_module_class_is_refused(target: str) -> None:
    with pytest.raises(PluginError) as caught:
        Registry(plugins=(target,), entry_point_plugins=False)
    assert str(caught.value) == f"cannot load integration {target!r}: expected 'module:Class'"


def test_missing_module_gives_a_clear_error(plugin_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        Registry(plugins=("wi_no_such_module_here:Thing",), entry_point_plugins=False)
    assert str(caught.value) == (
        "cannot load integration 'wi_no_such_module_here:Thing': importing"
        " 'wi_no_such_module_here' failed: ModuleNotFoundError:"
        " No module named 'wi_no_such_module_here'"
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("raise RuntimeError('no token configured')\n", "RuntimeError: no token configured"),
        ("def broken(:\n", "SyntaxError: "),
        ("import wi_missing_dependency_of_a_plugin\n", "ModuleNotFoundError: "),
    ],
)
def test_module_failing_at_import_gives_a_clear_error(
    write_module: ModuleWriter, source: str, error: str
) -> None:
    module = write_module(source)
    with pytest.raises(PluginError) as caught:
        Registry(plugins=(f"{module}:Hello",), entry_point_plugins=False)
    assert str(caught.value).startswith(
        f"cannot load integration '{module}:Hello': importing '{module}' failed: {error}"
    )


def _install_distribution(site: Path, module: str, entry_name: str, attribute: str) -> None:
    """A minimal installed distribution that declares one entry point."""
    dist_info = site / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{entry_name} = {module}:{attribute}\n"
    )


def test_entry_point_plugin_is_found(plugin_module: str, plugin_path: Path) -> None:
    _install_distribution(plugin_path, plugin_module, "custom-hello", "Hello")

    assert Registry(entry_point_plugins=False).resolve("custom-hello") is ScriptIntegration
    cls = Registry().resolve("custom-hello")

    assert cls is not None and cls.__module__ == plugin_module


def test_entry_point_name_must_match_the_class_name(plugin_module: str, plugin_path: Path) -> None:
    _install_distribution(plugin_path, plugin_module, "custom-greeting", "Hello")
    with pytest.raises(PluginError) as caught:
        Registry()
    assert str(caught.value) == (
        f"entry point 'custom-greeting' in group '{ENTRY_POINT_GROUP}' loads"
        f" '{plugin_module}:Hello', whose name is 'custom-hello': the two must be the same"
    )


def test_a_check_under_its_old_name_is_warned_about(
    write_module: ModuleWriter, caplog: pytest.LogCaptureFixture
) -> None:
    module = write_module(
        """\
        from wazuh_integrator.integrations.base import Integration


        class Strict(Integration):
            name = "custom-strict"

            def options_problem(self, block):
                return "queue is required"

            async def send(self, alert):
                pass
        """
    )
    with caplog.at_level("WARNING"):
        Registry(plugins=(f"{module}:Strict",), entry_point_plugins=False)
    (record,) = [r for r in caplog.records if "options_problem" in r.getMessage()]
    assert f"{module}:Strict" in record.getMessage()
    assert "block_problem" in record.getMessage()


def test_a_plugin_with_block_problem_loads_without_a_warning(
    plugin_module: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        Registry(plugins=(f"{plugin_module}:Hello",), entry_point_plugins=False)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
