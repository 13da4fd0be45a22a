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
    # its tables look like results: the run says they are not, and what a full run takes
    said = " ".join(completed.stdout.split())
    note = "so these numbers only show that the script runs, not what distillation does"
    assert said.index(note) < said.index("concepts: mean (std) over 1 seed(s)")
    assert "A full run (without --quick: 3 seeds, 4 epochs, 1000 training images" in said
    # and so do the tables drawn again from its saved results
    again = run_example(
        "attribution_kd_study.py",
        "--from-results",
        str(tmp_path / "study" / "results.pt"),
        "--out",
        str(tmp_path / "again"),
        cwd=tmp_path,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert note in " ".join(again.stdout.split())
