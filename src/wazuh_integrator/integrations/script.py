"""Custom integrations: run ``<home>/integrations/<name>`` once per alert.

The argv contract is stock's (REFERENCE.md, "Calling a script"), minus its
bugs: no shell and no splitting on spaces, no stray ninth argument, and the
alert and options files are readable by the owner only, inside a private
directory that is removed whatever happens. The script runs in its own process
group so that a time-out kills whatever it started too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from wazuh_integrator import compat
from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
from wazuh_integrator.errors import Permanent, Timeout, Transient
from wazuh_integrator.integrations.base import Alert, Integration
from wazuh_integrator.integrations.flood_marks import digest_of
from wazuh_integrator.integrations.legacy_format import format_legacy_alert
from wazuh_integrator.secret import redact_urls_in, scrub

__all__ = ["OUTPUT_LIMIT_BYTES", "ScriptIntegration"]

logger = logging.getLogger(__name__)

OUTPUT_LIMIT_BYTES = 4096
_READ_CHUNK_BYTES = 64 * 1024
# exec failures that running again cannot cure.
_NOT_RUNNABLE = frozenset({errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.EISDIR})


@dataclass
class _Run:
    """What a script run left behind; ``head`` fills while the script runs so
    that a time-out can still report the output so far."""

    head: bytearray
    status: int | None = None


class ScriptIntegration(Integration):
    """Any ``custom-*`` block that no Python plugin claims."""

    name = "custom-"  # a marker: the real name is self.block.name
    needs_script = True
    # A script may have done half its work before failing: failures go to the
    # dead letters, to be replayed by a person, unless retry = true is set.
    retry_by_default = False
    default_concurrency = 4

    @property
    def attempt_timeout_s(self) -> float:
        # The script gets <timeout> and <retries> and, like stock's own
        # scripts, may spend a time-out on each of its tries: killing it after
        # one would cut short a script doing exactly what it was told.
        return float(self.block.timeout_s * (self.block.retries + 1))

    @property
    def script_path(self) -> Path:
        return WazuhPaths.from_home(self.context.home.absolute()).integrations_dir / self.block.name

    async def send(self, alert: Alert) -> None:
        script = self._existing_script()
        alert_bytes = self._alert_bytes(alert)
        with _private_directory(self.context.state_dir.absolute() / "tmp") as workdir:
            argv = self._prepare_files(script, workdir, alert_bytes)
            logger.debug("running %s for alert %s", script, alert.get("id"))
            run = await self._run(argv)
        if run.status != 0:
            raise Transient(
                f"script {script} {_describe_status(run.status)}: {self._output(run)}",
                status=run.status,
            )

    def _prepare_files(self, script: Path, workdir: Path, alert_bytes: bytes) -> list[str]:
        """Write the alert (and options) files; return the script's argv."""
        alert_file = workdir / f"{self.block.name}.alert"
        options_file: Path | None = None
        try:
            _write_private(alert_file, alert_bytes)
            if self.block.options is not None:
                options_file = workdir / f"{self.block.name}.options"
                _write_private(options_file, orjson.dumps(self.block.options, default=_plain))
        except OSError as exc:
            raise Transient(f"cannot write the files for script {script}: {exc}") from exc
        except TypeError as exc:  # orjson's encode error: an option that is not JSON
            raise Permanent(f"options cannot be written as JSON: {exc}") from exc
        return self._argv(script, alert_file, options_file)

    def _existing_script(self) -> Path:
        name = self.block.name
        if "/" in name or "\0" in name or name in (".", ".."):
            raise Permanent(f"integration name {name!r} cannot name a script")
        script = self.script_path
        if not script.is_file():
            raise Permanent(f"script {script} is missing")
        return script

    def _alert_bytes(self, alert: Alert) -> bytes:
        # A digest has no legacy text form: it is written as JSON whatever the format.
        if self.block.json_format or digest_of(alert) is not None:
            try:
                return orjson.dumps(alert) + b"\n"
            except orjson.JSONEncodeError as exc:
                raise Permanent(f"alert cannot be written as JSON: {exc}") from exc
        return format_legacy_alert(alert, self.block.max_log).encode("utf-8", "surrogateescape")

    def _argv(self, script: Path, alert_file: Path, options_file: Path | None) -> list[str]:
        block = self.block
        return [
            str(script),
            str(alert_file),
            block.api_key.reveal() if block.api_key else "",
            block.hook_url.reveal() if block.hook_url else "",
            "debug" if self.context.debug else "",
            str(options_file) if options_file is not None else "",
            str(block.timeout_s),
            str(block.retries),
        ]

    async def _run(self, argv: list[str]) -> _Run:
        try:
            process = await _spawn(argv, self.context.home.absolute())
        except OSError as exc:
            if exc.errno in _NOT_RUNNABLE:
                # The script was there a moment ago, so ENOENT means its #! interpreter.
                hint = " (check its #! line)" if exc.errno in (errno.ENOENT, errno.ENOEXEC) else ""
                raise Permanent(f"script {argv[0]} cannot be run: {exc.strerror}{hint}") from exc
            raise Transient(f"script {argv[0]} could not start: {exc.strerror}") from exc

        # Keep a little more than the limit so that a secret straddling the
        # limit is still whole when it is scrubbed.
        secrets = _secret_fragments(self.block)
        keep = OUTPUT_LIMIT_BYTES + max((len(s.encode()) for s in secrets), default=0)
        run = _Run(head=bytearray())
        finished = False
        try:
            async with compat.timeout(self.attempt_timeout_s):
                assert process.stdout is not None
                await _read_head(process.stdout, run.head, keep)
                run.status = await process.wait()
            finished = True
        except compat.TIMEOUT_ERRORS:
            raise Timeout(
                f"script {argv[0]} did not finish within {self.attempt_timeout_s:g} s and was"
                f" killed with its process group: {self._output(run)}"
            ) from None
        finally:
            if not finished:
                # Time-out or cancellation: nothing the script started may outlive it.
                _kill_group(process.pid)
                await process.wait()
        return run

    def _output(self, run: _Run) -> str:
        text = run.head.decode("utf-8", "replace")
        text = redact_urls_in(scrub(text, _secret_fragments(self.block)))
        text = text[:OUTPUT_LIMIT_BYTES].strip()
        return text if text else "(no output)"


async def _spawn(argv: list[str], cwd: Path) -> asyncio.subprocess.Process:
    """Start ``argv`` as the leader of a new process group, output piped.

    The process exists before its pipes are connected; a cancellation in
    between must not leave it, or what it started, running unseen.
    """
    spawning = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
    )
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        with suppress(OSError):
            process = await spawning
            _kill_group(process.pid)
            await process.wait()
        raise


def _secret_fragments(block: IntegrationBlock) -> list[str]:
    """Every value to scrub from a script's output, longest first.

    A script may print only the path or query of its hook URL, which is where
    a webhook's token lives.
    """
    values = set(block.secrets)
    if block.hook_url:
        try:
            parts = urlsplit(block.hook_url.reveal())
        except ValueError:
            parts = None
        if parts is not None:
            values.update(part for part in (parts.path, parts.query) if part not in ("", "/"))
    return sorted(values, key=len, reverse=True)


async def _read_head(stream: asyncio.StreamReader, head: bytearray, keep: int) -> None:
    """Read ``stream`` to its end, keeping its first ``keep`` bytes in ``head``.

    Reading on past the limit matters: a script blocked on a full pipe would
    otherwise never exit.
    """
    while chunk := await stream.read(_READ_CHUNK_BYTES):
        room = keep - len(head)
        if room > 0:
            head += chunk[:room]


def _kill_group(pgid: int) -> None:
    # The group may already be empty: the script and its children all exited.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _describe_status(status: int | None) -> str:
    if status is not None and status < 0:
        return f"was killed by signal {-status}"
    return f"exited with status {status}"


def _plain(value: object) -> object:
    # Options may come from the config reader as read-only mappings.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


@contextmanager
def _private_directory(parent: Path) -> Iterator[Path]:
    """A fresh directory only the daemon's user can enter, removed on exit."""
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="script-", dir=parent))
    except OSError as exc:
        raise Transient(f"cannot create a private directory under {parent}: {exc}") from exc
    try:
        os.chmod(path, 0o700)  # mkdtemp's mode is reduced by the umask; say it outright
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(content)
