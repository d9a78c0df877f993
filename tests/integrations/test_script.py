"""Custom scripts, run for real: argv, files and their modes, clean-up, time-outs, errors.

Each recorder script (one Python, one ``#!/bin/sh``) copies what it was given
into a record directory: its argv (NUL-separated), the alert and options files'
contents and modes, and the mode of the directory holding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest

from wazuh_integrator import compat
from wazuh_integrator.config.models import IntegrationBlock, IntegrationSettings
from wazuh_integrator.errors import Permanent, Timeout, Transient
from wazuh_integrator.integrations.base import IntegrationContext
from wazuh_integrator.integrations.legacy_format import format_legacy_alert
from wazuh_integrator.integrations.script import OUTPUT_LIMIT_BYTES, ScriptIntegration
from wazuh_integrator.secret import Secret

NAME = "custom-recorder"
API_KEY = "key with spaces 0123456789abcdef"
HOOK_URL = "https://hooks.example.com/services/T000/B000/sekrit-token"

ALERT: dict[str, Any] = {
    "timestamp": "2024-05-01T10:20:30.123+0000",
    "rule": {"level": 10, "description": "Multiple 'failed' logins", "id": "5712"},
    "agent": {"id": "001", "name": "web01"},
    "location": "/var/log/secure",
    "full_log": "sshd[1]: Failed password for root from 203.0.113.9; $(reboot)",
    "data": {"srcip": "203.0.113.9"},
    "id": "1714558830.42",
}

PYTHON_RECORDER = """\
#!{python}
import os, stat, sys
out = {record!r}
with open(os.path.join(out, "argv"), "wb") as f:
    f.write(b"\\0".join(a.encode() for a in sys.argv[1:]))
def copy(path, name):
    with open(path, "rb") as src, open(os.path.join(out, name), "wb") as dst:
        dst.write(src.read())
    with open(os.path.join(out, name + "_mode"), "w") as f:
        f.write("%o\\n" % stat.S_IMODE(os.stat(path).st_mode))
copy(sys.argv[1], "alert")
if sys.argv[5]:
    copy(sys.argv[5], "options")
with open(os.path.join(out, "dir_mode"), "w") as f:
    f.write("%o\\n" % stat.S_IMODE(os.stat(os.path.dirname(sys.argv[1])).st_mode))
with open(os.path.join(out, "process"), "w") as f:
    own_group = os.getpgrp() == os.getpid()
    f.write("%s %s %s" % (own_group, os.readlink("/proc/self/fd/0"), os.getcwd()))
"""

SHELL_RECORDER = """\
#!/bin/sh
out='{record}'
printf '%s\\0' "$@" | head -c -1 > "$out/argv"
cat "$1" > "$out/alert"
stat -c '%a' "$1" > "$out/alert_mode"
if [ -n "$5" ]; then
    cat "$5" > "$out/options"
    stat -c '%a' "$5" > "$out/options_mode"
fi
stat -c '%a' "$(dirname "$1")" > "$out/dir_mode"
"""


@dataclass
class Home:
    root: Path
    state_dir: Path
    record: Path

    def install(self, body: str, name: str = NAME) -> Path:
        script = self.root / "integrations" / name
        script.write_text(textwrap.dedent(body))
        script.chmod(0o750)
        return script

    def integration(self, debug: bool = False, **block_fields: Any) -> ScriptIntegration:
        block_fields.setdefault("name", NAME)
        block = IntegrationBlock(index=0, path="ossec.conf", line=1, **block_fields)
        context = IntegrationContext(
            home=self.root, state_dir=self.state_dir, settings=IntegrationSettings(), debug=debug
        )
        return ScriptIntegration(block, context)

    def recorded(self, name: str) -> str:
        return (self.record / name).read_text()

    def recorded_argv(self) -> list[str]:
        return (self.record / "argv").read_bytes().decode().split("\0")

    def leftover_files(self) -> list[Path]:
        """What runs left under the state's tmp/: the empty private directories
        kept for the next run are not leftovers (see :meth:`leftover_directories`)."""
        return [path for path in self._everything_in_tmp() if not path.is_dir()]

    def leftover_directories(self) -> list[Path]:
        return [path for path in self._everything_in_tmp() if path.is_dir()]

    def _everything_in_tmp(self) -> list[Path]:
        tmp = self.state_dir / "tmp"
        return sorted(tmp.rglob("*")) if tmp.exists() else []


@pytest.fixture
def home(tmp_path: Path) -> Home:
    root = tmp_path / "ossec"
    (root / "integrations").mkdir(parents=True)
    record = tmp_path / "record"
    record.mkdir()
    return Home(root=root, state_dir=tmp_path / "state", record=record)


RECORDERS: dict[str, Callable[[Home], str]] = {
    "python": lambda home: PYTHON_RECORDER.format(python=sys.executable, record=str(home.record)),
    "shell": lambda home: SHELL_RECORDER.format(record=home.record),
}


@pytest.fixture(params=sorted(RECORDERS))
def recorder_home(request: pytest.FixtureRequest, home: Home) -> Home:
    home.install(RECORDERS[request.param](home))
    return home


@pytest.mark.parametrize("alert_format", ["json", None, "text"])
@pytest.mark.parametrize("with_options", [True, False])
async def test_argv_and_files_follow_the_contract(
    recorder_home: Home, alert_format: str | None, with_options: bool
) -> None:
    home = recorder_home
    options = {"pretext": "Custom", "nested": {"a": [1, 2]}} if with_options else None
    integration = home.integration(
        api_key=Secret(API_KEY),
        hook_url=Secret(HOOK_URL),
        alert_format=alert_format,
        options=options,
        max_log=170,
        timeout_s=7,
        retries=5,
    )

    await integration.send(ALERT)

    argv = home.recorded_argv()
    assert len(argv) == 7
    alert_path, api_key, hook_url, debug, options_path, timeout, retries = argv
    assert (api_key, hook_url, debug, timeout, retries) == (API_KEY, HOOK_URL, "", "7", "5")
    assert Path(alert_path).is_absolute()
    assert Path(alert_path).parent.parent == (home.state_dir / "tmp").absolute()
    if alert_format == "json":
        assert home.recorded("alert") == orjson.dumps(ALERT).decode() + "\n"
    else:
        assert home.recorded("alert") == format_legacy_alert(ALERT, 170)
    assert home.recorded("alert_mode") == "600\n"
    assert home.recorded("dir_mode") == "700\n"
    if with_options:
        assert options_path.endswith("options")
        assert Path(options_path).parent == Path(alert_path).parent
        assert orjson.loads(home.recorded("options")) == options
        assert home.recorded("options_mode") == "600\n"
    else:
        assert options_path == ""
    assert home.leftover_files() == []


async def test_unset_secrets_are_empty_arguments_and_debug_is_passed(recorder_home: Home) -> None:
    await recorder_home.integration(debug=True).send(ALERT)
    argv = recorder_home.recorded_argv()
    assert argv[1:] == ["", "", "debug", "", "10", "3"]


async def test_legacy_file_has_sanitised_fields(home: Home) -> None:
    home.install(RECORDERS["shell"](home))
    await home.integration().send(ALERT)
    lines = home.recorded("alert").split("\n")
    assert lines[5] == "alertlog='sshd[1]: Failed password for root from 203.0.113.9,  (reboot)'"
    assert lines[6] == "srcip='203.0.113.9'"


async def test_script_runs_in_its_own_group_from_the_home_with_no_stdin(home: Home) -> None:
    home.install(RECORDERS["python"](home))
    await home.integration().send(ALERT)
    assert home.recorded("process") == f"True /dev/null {home.root.absolute()}"


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for init to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _wait_until_dead(pid: int) -> bool:
    # SIGKILL is delivered asynchronously; give the kernel a bounded moment.
    for _ in range(500):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.01)
    return False


SPAWNER = """\
#!/bin/sh
sleep 60 &
echo $! > '{record}/child'
echo "working with $2"
wait
"""


async def test_time_out_kills_the_whole_process_group(home: Home) -> None:
    home.install(SPAWNER.format(record=home.record))
    integration = home.integration(api_key=Secret(API_KEY), timeout_s=1, retries=0)

    with pytest.raises(Timeout) as caught:
        await integration.send(ALERT)

    child = int(home.recorded("child"))
    assert await _wait_until_dead(child)
    message = str(caught.value)
    assert "did not finish within 1 s" in message
    assert "working with <secret>" in message
    assert API_KEY not in message
    assert home.leftover_files() == []


async def test_cancellation_kills_the_whole_process_group(home: Home) -> None:
    home.install(SPAWNER.format(record=home.record))
    task = asyncio.create_task(home.integration(timeout_s=60).send(ALERT))
    child_file = home.record / "child"
    for _ in range(1000):
        if child_file.exists() and child_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_until_dead(int(child_file.read_text()))
    assert home.leftover_files() == []


async def test_non_zero_exit_raises_transient_with_output_and_no_secret(home: Home) -> None:
    home.install(
        """\
        #!/bin/sh
        echo "posting to $3 with key $2"
        echo "POST /services/T000/B000/sekrit-token failed"
        echo "server said no: see https://api.example.com/v1/errors?token=abc" >&2
        exit 3
        """
    )
    integration = home.integration(api_key=Secret(API_KEY), hook_url=Secret(HOOK_URL))

    with pytest.raises(Transient) as caught:
        await integration.send(ALERT)

    error = caught.value
    assert type(error) is Transient
    assert error.status == 3
    message = str(error)
    assert "exited with status 3" in message
    assert "posting to <secret> with key <secret>" in message
    assert "POST <secret> failed" in message
    assert "server said no: see https://api.example.com/<redacted>" in message
    for leak in (API_KEY, HOOK_URL, "sekrit-token", "token=abc"):
        assert leak not in message
    assert home.leftover_files() == []


async def test_a_signalled_script_is_reported_as_such(home: Home) -> None:
    home.install("#!/bin/sh\nkill -TERM $$\n")
    with pytest.raises(Transient, match="was killed by signal 15"):
        await home.integration().send(ALERT)


async def test_output_is_cut_to_the_limit_and_a_chatty_script_does_not_block(
    home: Home,
) -> None:
    home.install(
        f"#!{sys.executable}\nimport sys\nsys.stdout.write('x' * 1_000_000)\nsys.exit(1)\n"
    )
    with pytest.raises(Transient) as caught:
        await home.integration().send(ALERT)
    assert str(caught.value).endswith("exited with status 1: " + "x" * OUTPUT_LIMIT_BYTES)


async def test_a_secret_straddling_the_output_limit_is_still_scrubbed(home: Home) -> None:
    padding = OUTPUT_LIMIT_BYTES - 10
    home.install(
        f"#!{sys.executable}\nimport sys\n"
        f"sys.stdout.write('y' * {padding} + sys.argv[2])\nsys.exit(1)\n"
    )
    with pytest.raises(Transient) as caught:
        await home.integration(api_key=Secret(API_KEY)).send(ALERT)
    message = str(caught.value)
    assert API_KEY[:10] not in message
    assert message.endswith("y" * 10 + "<secret>"[:10])


async def test_empty_output_is_said_so(home: Home) -> None:
    home.install("#!/bin/sh\nexit 1\n")
    with pytest.raises(Transient, match=r"exited with status 1: \(no output\)"):
        await home.integration().send(ALERT)


async def test_missing_script_is_permanent(home: Home) -> None:
    with pytest.raises(Permanent, match=f"script .*/integrations/{NAME} is missing"):
        await home.integration().send(ALERT)
    assert home.leftover_files() == []


async def test_script_that_is_not_executable_is_permanent(home: Home) -> None:
    home.install("#!/bin/sh\nexit 0\n").chmod(0o640)
    with pytest.raises(Permanent, match="cannot be run"):
        await home.integration().send(ALERT)
    assert home.leftover_files() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("exit 0\n", "Exec format error (check its #! line)"),
        ("#!/nonexistent/interpreter\nexit 0\n", "No such file or directory (check its #! line)"),
    ],
)
async def test_script_that_cannot_be_executed_is_permanent(
    home: Home, body: str, reason: str
) -> None:
    home.install(body)
    with pytest.raises(Permanent) as caught:
        await home.integration().send(ALERT)
    assert str(caught.value).endswith(f"cannot be run: {reason}")
    assert home.leftover_files() == []


@pytest.mark.parametrize("name", ["custom-../../../bin/true", "custom-a/b"])
async def test_a_name_with_a_slash_never_leaves_the_integrations_directory(
    home: Home, name: str
) -> None:
    with pytest.raises(Permanent, match="cannot name a script"):
        await home.integration(name=name).send(ALERT)


async def test_concurrent_runs_use_separate_private_directories(home: Home) -> None:
    home.install(
        f"""\
        #!/bin/sh
        dirname "$1" >> '{home.record}/dirs'
        """
    )
    integration = home.integration()
    await asyncio.gather(*(integration.send(ALERT) for _ in range(6)))
    directories = home.recorded("dirs").split()
    assert len(set(directories)) == 6
    assert home.leftover_files() == []


async def test_unusable_state_directory_is_a_transient_failure(home: Home) -> None:
    home.install("#!/bin/sh\nexit 0\n")
    home.state_dir.write_text("a file where the state directory should be")
    with pytest.raises(Transient, match="cannot create a private directory under"):
        await home.integration().send(ALERT)


async def test_read_only_options_mappings_are_written_as_json(home: Home) -> None:
    home.install(RECORDERS["shell"](home))
    options = MappingProxyType({"a": MappingProxyType({"b": 1})})
    await home.integration(options=options).send(ALERT)
    assert orjson.loads(home.recorded("options")) == {"a": {"b": 1}}


def test_class_attributes_tell_the_delivery_layer_how_to_treat_scripts() -> None:
    assert ScriptIntegration.needs_script is True
    assert ScriptIntegration.retry_by_default is False
    assert ScriptIntegration.default_concurrency == 4
    assert ScriptIntegration.name == "custom-"


async def test_tmp_directory_is_private(home: Home) -> None:
    home.install("#!/bin/sh\nexit 0\n")
    await home.integration().send(ALERT)
    assert stat.S_IMODE(os.stat(home.state_dir / "tmp").st_mode) == 0o700


@pytest.mark.parametrize(("timeout_s", "retries", "limit_s"), [(10, 3, 40.0), (5, 0, 5.0)])
def test_a_script_may_spend_its_time_out_on_each_of_its_tries(
    home: Home, timeout_s: int, retries: int, limit_s: float
) -> None:
    integration = home.integration(timeout_s=timeout_s, retries=retries)
    assert integration.attempt_timeout_s == limit_s


BACKGROUND_JOB = """\
#!{python}
import os, subprocess
fds = {{}}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except FileNotFoundError:  # the listing's own, closed already
        pass
# Like "sleep 60 >/dev/null 2>&1 &" in a shell: the job inherits every fd not
# marked close-on-exec.
job = subprocess.Popen(
    ["sleep", "60"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    close_fds=False,
)
with open("{record}/fds", "w") as f:
    f.write(" ".join("%s=%s" % item for item in fds.items()))
with open("{record}/child", "w") as f:
    f.write(str(job.pid))
"""


def _send_under_uvloop(integration: ScriptIntegration) -> float:
    import uvloop

    async def send() -> float:
        started = asyncio.get_running_loop().time()
        await integration.send(ALERT)
        return asyncio.get_running_loop().time() - started

    return compat.run(send(), uvloop.new_event_loop)


def test_a_script_leaving_a_background_job_succeeds_under_uvloop(home: Home) -> None:
    """docs/integrations/custom.md's advice: ``cmd >/dev/null 2>&1 &``, then exit 0.

    uvloop, the daemon's loop, used to leave the script extra copies of its
    output pipe, which the background job inherited: the run never ended."""
    home.install(BACKGROUND_JOB.format(python=sys.executable, record=home.record))
    integration = home.integration(timeout_s=20, retries=0)
    try:
        elapsed_s = _send_under_uvloop(integration)
    finally:
        child = home.record / "child"
        if child.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child.read_text()), signal.SIGKILL)
    assert elapsed_s < 10  # the job sleeps 60 s; a run waiting on it would time out at 20 s
    fds = dict(item.split("=", 1) for item in home.recorded("fds").split())
    # The python child's own listing of /proc/self/fd opens one fd of its own.
    extra = {fd: target for fd, target in fds.items() if fd not in ("0", "1", "2")}
    assert all(target.startswith("/proc/") for target in extra.values()), fds
    assert fds["0"] == "/dev/null"
    assert fds["1"] == fds["2"] and fds["1"].startswith("pipe:")
    assert home.leftover_files() == []


LEAVES_A_CHILD_ON_THE_PIPE = """\
#!/bin/sh
echo started
sleep 60 &
echo $! > '{record}/child'
exit 0
"""


async def test_a_child_left_holding_the_output_does_not_hold_up_the_run(home: Home) -> None:
    # Its exit status is the script's answer; what it left running is not waited for.
    home.install(LEAVES_A_CHILD_ON_THE_PIPE.format(record=home.record))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await home.integration(timeout_s=20, retries=0).send(ALERT)
    finally:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.kill(int(home.recorded("child")), signal.SIGKILL)
    assert loop.time() - started < 10
    assert home.leftover_files() == []


# -- the private directories, kept from one run to the next -----------------------


async def test_each_run_in_progress_has_a_directory_of_its_own_kept_until_close(
    home: Home,
) -> None:
    home.install(f'#!/bin/sh\ndirname "$1" >> {home.record}/dirs\nsleep 0.2\n')
    integration = home.integration()

    await asyncio.gather(*(integration.send(ALERT) for _ in range(3)))
    await integration.send(ALERT)

    first_three = home.recorded("dirs").splitlines()[:3]
    assert len(set(first_three)) == 3
    assert home.recorded("dirs").splitlines()[3] in first_three  # lent again
    assert len(home.leftover_directories()) == 3
    assert home.leftover_files() == []
    await integration.close()
    assert home.leftover_directories() == []


async def test_what_a_script_leaves_in_its_directory_is_removed_after_the_run(
    home: Home,
) -> None:
    home.install(
        '#!/bin/sh\nd="$(dirname "$1")"\ntouch "$d/extra"\nmkdir "$d/sub"\ntouch "$d/sub/x"\n'
    )
    integration = home.integration()

    await integration.send(ALERT)
    await integration.send(ALERT)  # the same names again: the directory was emptied

    assert home.leftover_files() == []
    assert len(home.leftover_directories()) == 1
