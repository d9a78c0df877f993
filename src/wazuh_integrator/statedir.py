"""The state directory, made ready before anything else starts.

On a Wazuh manager ``var/`` is ``root:wazuh`` with mode 0750, so the
``wazuh`` user cannot create ``var/integrator`` itself: the service unit
creates it as root (``ExecStartPre=+``). Anywhere else the daemon creates it.
Either way a directory we cannot use is reported in one sentence that names
``state_dir``, the path, the user and what stands in the way.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from wazuh_integrator.errors import IntegratorError

__all__ = ["StateDirError", "prepare_state_dir"]


class StateDirError(IntegratorError):
    """The state directory cannot be created or written."""


def prepare_state_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if needed and check that we may write in it."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        blocker = _nearest_existing(path.parent)
        raise StateDirError(
            f"state_dir {path}: cannot create it: {exc.strerror or exc}"
            f" ({_who()}; {_describe(blocker)}). {_remedy(path)}"
        ) from exc
    if not path.is_dir():
        raise StateDirError(f"state_dir {path}: exists but is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StateDirError(
            f"state_dir {path}: Permission denied: cannot write in it"
            f" ({_who()}; {_describe(path)}). {_remedy(path)}"
        )


def _remedy(path: Path) -> str:
    return (
        f"Create it for the daemon's user (install -d -o wazuh -g wazuh -m 0700 {path}),"
        " or set state_dir in integrator.toml to a directory it can write"
    )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _who() -> str:
    uid = os.geteuid()
    return f"running as {_user_name(uid)} (uid {uid})"


def _describe(path: Path) -> str:
    try:
        status = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    owner = _user_name(status.st_uid)
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    return f"{path} is {owner}:{group}, mode {stat.S_IMODE(status.st_mode):04o}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
