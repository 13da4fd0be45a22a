"""The attribution study's quick run (``examples/attribution_kd_study.py --quick``) goes to
its end and draws its summary: a failure at its summary picture had gone unseen."""

import pytest

from tests._examples import run_example


@pytest.mark.slow
def test_the_quick_study_runs_and_writes_its_summary(tmp_path):
    # about 35 s of one CPU
    completed = run_example(
        "attribution_kd_study.py",
        "--quick",
        "--out",
        str(tmp_path / "study"),
        cwd=tmp_path,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = tmp_path / "study" / "summary.png"
    assert summary.is_file() and summary.stat().st_size > 10_000
    assert f"pictures in {tmp_path / 'study'}" in completed.stdout
