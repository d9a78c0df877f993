"""Coverage-guided fuzzing of what the daemon reads, with atheris.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python fuzz/run.py alert-line -max_total_time=300
    .venv/bin/python fuzz/run.py ossec-conf -max_total_time=300 fuzz/corpus/ossec-conf

The first argument names a target of fuzz/targets.py (ossec-conf,
integrator-toml, alert-line); the rest go to libFuzzer. Without a corpus
folder among them, the run starts from a scratch copy of fuzz/seeds/<target>/
(valid files that the mutations start from). A crash writes the input that
caused it to ./crash-<hash> and exits non-zero.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports():
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer options]")
    name, options = sys.argv[1], sys.argv[2:]
    if not any(not option.startswith("-") for option in options):
        corpus = Path(tempfile.mkdtemp(prefix=f"wi-fuzz-{name}-"))
        for seed in (Path(__file__).resolve().parent / "seeds" / name).iterdir():
            shutil.copy(seed, corpus)
        options.append(str(corpus))
    atheris.Setup([sys.argv[0], *options], targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
