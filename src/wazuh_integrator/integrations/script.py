"""Custom integrations: run ``<home>/integrations/<name>`` once per alert.

The argv contract is stock's (REFERENCE.md, "Calling a script"), minus its
bugs: no shell and no splitting on spaces, no stray ninth argument, and the
alert and options files are readable by the owner only, inside a private
directory that is emptied whatever happens (and kept for the next run:
:mod:`~wazuh_integrator.integrations.workdirs`). The script runs in its own
process group so that a time-out kills whatever it started too.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import orjson

from wazuh_integrator import compat
from wazuh_integrator.config.models import IntegrationBlock, WazuhPaths
from wazuh_integrator.errors import Permanent, Timeout, Transient
from wazuh_integrator.integrations.base import Alert, Integration, IntegrationContext
from wazuh_integrator.integrations.flood_marks import digest_of
from wazuh_integrator.integrations.legacy_format import format_legacy_alert
from wazuh_integrator.integrations.workdirs import Workdirs
from wazuh_integrator.secret import longest_form_bytes, redact_urls_in, scrub

__all__ = ["OUTPUT_LIMIT_BYTES", "ScriptIntegration"]

logger = logging.getLogger(__name__)

OUTPUT_LIMIT_BYTES = 4096
_READ_CHUNK_BYTES = 64 * 1024
# After the script exits, how long output from what it left running is still taken.
_OUTPUT_AFTER_EXIT_S = 0.1
_EXIT_POLL_S = 0.01
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
    uses_http = False
    needs_script = True
    # A script may have done half its work before failing: failures go to the
    # dead letters, to be replayed by a person, unless retry = true is set.
    retry_by_default = False
    default_concurrency = 4

    def __init__(self, block: IntegrationBlock, context: IntegrationContext) -> None:
        super().__init__(block, context)
        self._workdirs = Workdirs(context.state_dir.absolute() / "tmp")

    @property
    def attempt_timeout_s(self) -> float:
        # The script gets <timeout> and <retries> and, like stock's own
        # scripts, may spend a time-out on each of its tries: killing it after
        # one would cut short a script doing exactly what it was told.
        return float(self.block.timeout_s * (self.block.retries + 1))

    @property
    def script_path(self) -> Path:
        return WazuhPaths.from_home(self.context.home.absolute()).integrations_dir / self.block.name

    async def close(self) -> None:
        self._workdirs.close()

    async def send(self, alert: Alert) -> None:
        script = self._existing_script()
        alert_bytes = self._alert_bytes(alert)
        with self._workdirs.lend() as workdir:
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
            child = _Child.spawn(argv, self.context.home.absolute())
        except OSError as exc:
            if exc.errno in _NOT_RUNNABLE:
                # The script was there a moment ago, so ENOENT means its #! interpreter.
                hint = " (check its #! line)" if exc.errno in (errno.ENOENT, errno.ENOEXEC) else ""
                raise Permanent(f"script {argv[0]} cannot be run: {exc.strerror}{hint}") from exc
            raise Transient(f"script {argv[0]} could not start: {exc.strerror}") from exc

        # Keep a little more than the limit so that a secret straddling the
        # limit is still whole when it is scrubbed.
        keep = OUTPUT_LIMIT_BYTES + longest_form_bytes(_secret_fragments(self.block))
        run = _Run(head=bytearray())
        finished = False
        try:
            finishing = child.finish(run.head, keep)
            run.status = await asyncio.wait_for(finishing, self.attempt_timeout_s)
            finished = True
        except compat.TIMEOUT_ERRORS:
            raise Timeout(
                f"script {argv[0]} did not finish within {self.attempt_timeout_s:g} s and was"
                f" killed with its process group: {self._output(run)}"
            ) from None
        finally:
            if not finished:
                # Time-out or cancellation: nothing the script started may outlive it.
                _kill_group(child.process.pid)
                await asyncio.shield(child.exited)
            child.close()
        return run

    def _output(self, run: _Run) -> str:
        text = run.head.decode("utf-8", "replace")
        text = redact_urls_in(scrub(text, _secret_fragments(self.block)))
        text = text[:OUTPUT_LIMIT_BYTES].strip()
        return text if text else "(no output)"


class _Child:
    """A running script: its process, the read end of its output, its exit.

    Started with :class:`subprocess.Popen` rather than the event loop's
    subprocess support: uvloop's leaves the script extra, inheritable copies
    of its output pipe, so a job the script starts in the background (with its
    own output sent elsewhere) still holds the pipe open and the run looks
    unfinished. ``close_fds`` guarantees that the script gets exactly stdin
    (``/dev/null``), stdout and stderr (both the pipe), and nothing else.
    """

    def __init__(self, process: subprocess.Popen[bytes], output: int) -> None:
        self.process = process
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self._output = output
        self._pidfd: int | None = None
        self._poller: asyncio.Task[None] | None = None
        try:
            self._pidfd = os.pidfd_open(process.pid)
        except OSError:  # a kernel before 5.3: poll instead
            self._poller = asyncio.ensure_future(self._poll_exit())
        else:
            loop.add_reader(self._pidfd, self._on_exit)

    @classmethod
    def spawn(cls, argv: list[str], cwd: Path) -> _Child:
        """Start ``argv`` as the leader of a new process group, output piped."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        # Only our end: a script whose stdout were non-blocking would see its
        # writes fail with EAGAIN whenever the pipe is full.
        os.set_blocking(read_end, False)
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=write_end,
                stderr=write_end,
                close_fds=True,
                start_new_session=True,
                cwd=cwd,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return cls(process, read_end)

    def _on_exit(self) -> None:
        status = self.process.poll()
        if status is not None and not self.exited.done():
            self.exited.set_result(status)
            self._stop_watching()

    async def _poll_exit(self) -> None:
        # No event to wait for without a pidfd: SIGCHLD belongs to the loop.
        while (status := self.process.poll()) is None:  # noqa: ASYNC110
            await asyncio.sleep(_EXIT_POLL_S)
        if not self.exited.done():
            self.exited.set_result(status)

    def _stop_watching(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    async def finish(self, head: bytearray, keep: int) -> int:
        """Read the output (its first ``keep`` bytes into ``head``) until the
        script exits; return its status.

        Reading on past the limit matters: a script blocked on a full pipe
        would otherwise never exit. Once it has exited, what it started may
        still hold the pipe: its output is taken for a moment more, not waited
        for.
        """
        reading = asyncio.ensure_future(self._read(head, keep))
        try:
            # Shielded: a time-out cancels this read, not the exit still to be reaped.
            status = await asyncio.shield(self.exited)
            with suppress(*compat.TIMEOUT_ERRORS):
                await asyncio.wait_for(asyncio.shield(reading), _OUTPUT_AFTER_EXIT_S)
        finally:
            reading.cancel()
            with suppress(asyncio.CancelledError):
                await reading
        return status

    async def _read(self, head: bytearray, keep: int) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._output, readable.set)
        try:
            while True:
                try:
                    chunk = os.read(self._output, _READ_CHUNK_BYTES)
                except BlockingIOError:
                    readable.clear()
                    await readable.wait()
                    continue
                if not chunk:
                    return
                room = keep - len(head)
                if room > 0:
                    head += chunk[:room]
        finally:
            loop.remove_reader(self._output)

    def close(self) -> None:
        self._stop_watching()
        if self._poller is not None:
            self._poller.cancel()
        if self._output >= 0:
            os.close(self._output)
            self._output = -1
        if self.process.returncode is None:
            # Only after a cancellation that left no time to reap it.
            with suppress(ChildProcessError):
                self.process.poll()


def _secret_fragments(block: IntegrationBlock) -> list[str]:
    """Every value to scrub from a script's output: the block's secrets, hook
    URL parts included (a script may print only the token of its hook URL)."""
    return block.secrets


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


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(content)
