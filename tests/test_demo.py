"""The demo's "Try next" commands run as printed, without activating the venv."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from wazuh_integrator.demo.runner import lay_out_home, runnable_program


def test_the_printed_program_runs_from_a_shell_without_the_venv(tmp_path: Path) -> None:
    lay_out_home(tmp_path)
    program = runnable_program()
    assert os.path.isabs(shlex.split(program)[0])
    # A PATH without the venv's bin: a bare `wazuh-integrator` would not be found.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    result = subprocess.run(
        f"{program} --home {tmp_path} dead-letter list",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "No state yet" in result.stdout
    assert Path(sys.executable).parent.name in program
