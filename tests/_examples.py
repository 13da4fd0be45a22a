"""Running an example script as its user does: a fresh interpreter, the repository on the path,
no display, one thread, in a folder of the test's own."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_example(script: str, *args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run ``examples/<script> ARGS...`` in ``cwd`` and return the finished process (its
    output as text); its exit status is left for the caller to check."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
