"""OutputTemplates: the configured templates of a block, the defaults, and
whether a file changed since it was compiled (what a reload asks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wazuh_integrator.errors import Permanent
from wazuh_integrator.integrations.templated import OutputTemplates

ALERT = {"id": "1.1", "rule": {"level": 3, "description": "d"}}


def templates(home: Path, text: str) -> OutputTemplates:
    (home / "t.txt.j2").write_text(text)
    return OutputTemplates({"template": "text"}, {"template": Path("t.txt.j2")}, home)


def render(output: OutputTemplates) -> str:
    return output.render(
        "template", "email-subject.txt.j2", alert=ALERT, options=None, integration="email"
    )


def test_unchanged_text_is_not_a_change_even_with_a_new_mtime(tmp_path: Path) -> None:
    output = templates(tmp_path, "{{ alert.id }}")
    os.utime(tmp_path / "t.txt.j2", (1, 1))
    assert output.changed_on_disk() == []
    assert render(output) == "1.1"


def test_new_text_behind_the_same_path_is_a_change(tmp_path: Path) -> None:
    output = templates(tmp_path, "{{ alert.id }}")
    before = (tmp_path / "t.txt.j2").stat()
    (tmp_path / "t.txt.j2").write_text("{{ alert.ID }}")
    os.utime(tmp_path / "t.txt.j2", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert output.changed_on_disk() == ["t.txt.j2"]
    assert render(output) == "1.1"  # the compiled one runs until the block is built again


@pytest.mark.parametrize("gone", ["deleted", "unreadable"])
def test_a_file_that_cannot_be_read_now_is_a_change(tmp_path: Path, gone: str) -> None:
    output = templates(tmp_path, "{{ alert.id }}")
    if gone == "deleted":
        (tmp_path / "t.txt.j2").unlink()
    else:
        (tmp_path / "t.txt.j2").write_bytes(b"caf\xe9")
    assert output.changed_on_disk() == ["t.txt.j2"]


def test_a_template_that_failed_to_compile_is_permanent_and_a_change_once_mended(
    tmp_path: Path,
) -> None:
    output = templates(tmp_path, "{{ alert.id ")
    with pytest.raises(Permanent, match=r"template t\.txt\.j2:1: syntax error"):
        render(output)
    (tmp_path / "t.txt.j2").write_text("{{ alert.id }}")
    assert output.changed_on_disk() == ["t.txt.j2"]


def test_without_a_configured_template_the_default_renders_and_nothing_changes(
    tmp_path: Path,
) -> None:
    output = OutputTemplates({"template": "text"}, {}, tmp_path)
    assert not output.configured("template")
    assert "d" in render(output)
    assert output.changed_on_disk() == []
