"""The attribution study's quick run (``examples/attribution_kd_study.py --quick``) goes to
its end and draws its summary: a failure at its summary picture had gone unseen."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_quick_study_runs_and_writes_its_summary(tmp_path):
    # about 35 s of one CPU
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "attribution_kd_study.py"),
            "--quick",
            "--out",
            str(tmp_path / "study"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = tmp_path / "study" / "summary.png"
    assert summary.is_file() and summary.stat().st_size > 10_000
    assert f"pictures in {tmp_path / 'study'}" in completed.stdout
