"""The fuzz targets: one function per input the daemon reads from outside.

Each takes arbitrary bytes and returns normally whatever they hold; the only
exceptions allowed are the documented ones (a configuration error, a line
that is not an alert). Anything else is a bug. Shared by the coverage-guided
runner (``fuzz/run.py``, atheris) and the property tests (hypothesis).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

from wazuh_integrator.commands.alert_inputs import read_alert_inputs
from wazuh_integrator.config.ossec import read_ossec_conf
from wazuh_integrator.config.settings import load_settings
from wazuh_integrator.decode import AlertDecodeError, decode_alert, decode_fields
from wazuh_integrator.errors import ConfigError, ConfigIssue
from wazuh_integrator.filters import FilterFields, compile_filter

_SCRATCH = Path(tempfile.mkdtemp(prefix="wi-fuzz-"))


def _one_line(issue: ConfigIssue) -> None:
    text = str(issue)
    if "\n" in text or "Traceback" in text:
        raise AssertionError(f"a configuration message is not one line: {text!r}")


def ossec_conf(data: bytes) -> None:
    """Any bytes as ossec.conf: a configuration, or errors of one line each."""
    path = _SCRATCH / "ossec.conf"
    path.write_bytes(data)
    config = read_ossec_conf(path)
    for issue in (*config.errors, *config.warnings):
        _one_line(issue)
    for block in config.blocks:
        # Every block that was read compiles to a filter that can judge an alert.
        alert_filter = compile_filter(block)
        alert_filter.reason(FilterFields(has_rule=True, level=5, rule_id="1", groups=("a",)))


def integrator_toml(data: bytes) -> None:
    """Any bytes as integrator.toml: settings, or a ConfigError of one-line issues."""
    path = _SCRATCH / "integrator.toml"
    path.write_bytes(data)
    try:
        load_settings(path)
    except ConfigError as exc:
        for issue in exc.issues:
            _one_line(issue)


def alert_line(data: bytes) -> None:
    """Any bytes as a line of alerts.json, through both decoders and the filters,
    and through ``test``'s reader."""
    line = data.split(b"\n", 1)[0]
    try:
        fields = decode_fields(line)
    except AlertDecodeError:
        fields = None
    try:
        alert = decode_alert(line)
    except AlertDecodeError:
        alert = None
    if fields is not None and alert is not None:
        FilterFields.from_alert(alert)
    for item in read_alert_inputs("fuzz", io.BytesIO(data)):
        if (item.alert is None) == (item.error is None):
            raise AssertionError(f"neither alert nor error: {item!r}")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ossec-conf": ossec_conf,
    "integrator-toml": integrator_toml,
    "alert-line": alert_line,
}
