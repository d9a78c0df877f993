"""Logging in Wazuh's own line format, so existing log tooling reads ours.

``2026/11/27 17:00:00 wazuh-integratord: INFO: Enabling integration for: 'slack'.``
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import time
from pathlib import Path

DAEMON_NAME = "wazuh-integratord"

_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


class WazuhFormatter(logging.Formatter):
    """Formats records as Wazuh daemons do; tracebacks only at debug level."""

    def __init__(self, *, show_tracebacks: bool) -> None:
        super().__init__()
        self._show_tracebacks = show_tracebacks

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        line = f"{stamp} {DAEMON_NAME}: {level}: {record.getMessage()}"
        if record.exc_info and self._show_tracebacks:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def debug_enabled(debug_level: int) -> bool:
    return debug_level > 0


def configure_logging(debug_level: int = 0, log_file: Path | None = None) -> None:
    """Route every record to stderr (or ``log_file``) in Wazuh's format.

    ``-d`` shows our debug lines; ``-dd`` also shows third-party libraries'.
    """
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # Reopens the file when it is renamed or removed (logrotate without
        # copytruncate): new lines go to the new file, none to the old one.
        handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(WazuhFormatter(show_tracebacks=debug_level > 0))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug_level >= 2 else logging.INFO)
    logging.getLogger("wazuh_integrator").setLevel(
        logging.DEBUG if debug_level >= 1 else logging.INFO
    )
