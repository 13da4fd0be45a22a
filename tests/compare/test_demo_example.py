"""The demo that ``make demo`` runs: it audits the bundled COMPAS data, writes the report, prints
the findings and the next steps, and shows the library's warnings as notes, not as Python's
warning lines with the script's source."""

import pytest

from tests._examples import run_example


@pytest.mark.slow
def test_demo_runs_and_says_where_the_report_is(tmp_path):
    out = tmp_path / "demo.html"
    completed = run_example("compare_demo.py", "--out", str(out), cwd=tmp_path, timeout=600)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert out.is_file() and out.stat().st_size > 0
    stdout = completed.stdout
    for heading in ("How faithful the mimic is:", "Missing-feature test:", "Next ("):
        assert heading in stdout
    assert f"Report: {out}" in stdout
    # the charge description and degree nearly determine each other: the library warns, and
    # the demo shows it as a note, without this script's path, line number and source line
    assert "warning: X holds strongly correlated features" in completed.stderr
    assert "UserWarning" not in completed.stderr
    assert "audit.fit(" not in completed.stderr
