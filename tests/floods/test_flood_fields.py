"""Dotted fields and the key text built from them, as throttles and digests read them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from wazuh_integrator.floods.fields import FieldPath, key_function, key_text


class _ReadOnly(Mapping[str, Any]):
    """A mapping that is not a dict: read through the general reader."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


PATHS = (FieldPath("rule.id"), FieldPath("agent.id"), FieldPath("data.srcip"))


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (
            {"rule": {"id": "5712"}, "agent": {"id": "001"}, "data": {"srcip": "10.0.0.1"}},
            "rule.id=5712 agent.id=001 data.srcip=10.0.0.1",
        ),
        (
            {"rule": {"id": 5712}, "agent": {"id": None}},
            "rule.id=5712 agent.id=null data.srcip=(missing)",
        ),
        (
            {"rule": {"id": {"b": 1, "a": [2]}}, "agent": "001", "data": ["10.0.0.1"]},
            'rule.id={"a":[2],"b":1} agent.id=(missing) data.srcip=(missing)',
        ),
        (
            {"rule": _ReadOnly({"id": "5712"}), "agent": _ReadOnly({}), "data": {"srcip": True}},
            "rule.id=5712 agent.id=(missing) data.srcip=true",
        ),
        ({}, "rule.id=(missing) agent.id=(missing) data.srcip=(missing)"),
    ],
)
def test_the_key_names_each_field_and_its_value(alert: dict[str, Any], expected: str) -> None:
    assert key_function(PATHS)(alert) == expected
    assert key_text(PATHS, alert) == expected
    assert key_function(PATHS)(_ReadOnly(alert)) == expected
