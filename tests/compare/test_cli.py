"""Tests of the command line ``python -m sklearn_distill audit``."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_distill.__main__ import main


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 300
    age = rng.integers(18, 70, size=n)
    group = rng.choice(["a", "b", "<b>c</b>"], size=n)
    hidden = rng.normal(size=n)
    logit = -(age - 40) / 10 + hidden
    frame = pd.DataFrame(
        {
            "age": age,
            "group": group,
            "risk": np.clip(np.round(5 + 2 * logit), 1, 10),
            "outcome": (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int),
            "unused": rng.normal(size=n),
        }
    )
    frame.loc[3, "group"] = np.nan
    path = tmp_path_factory.mktemp("cli") / "audit data.csv"
    frame.to_csv(path, index=False)
    return path


def test_audit_command_writes_report_and_prints_test(csv_path, tmp_path, capsys):
    out = tmp_path / "report.html"
    status = main(
        [
            "audit",
            str(csv_path),
            "--score",
            "risk",
            "--label",
            "outcome",
            "--features",
            "age",
            "group",
            "--out",
            str(out),
            "--cv",
            "2",
            "--n-bootstrap",
            "50",
        ]
    )
    assert status == 0
    captured = capsys.readouterr()
    assert "Missing-feature test" in captured.out
    for method in ("pearson", "spearman", "kendall"):
        assert method in captured.out
    assert f"Report written to {out}" in captured.out
    # progress went to standard error while it worked
    assert "reading" in captured.err and "out-of-fold residuals" in captured.err
    page = out.read_text(encoding="utf-8")
    assert "<b>c</b>" not in page and "&lt;b&gt;c&lt;/b&gt;" in page
    assert "unused" not in page  # only the features asked for


def test_quiet_default_features_and_stability(csv_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    args = ["audit", str(csv_path), "--score", "risk", "--label", "outcome", "--out", str(out)]
    assert main([*args, "--cv", "2", "--n-bootstrap", "20", "--stability", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Unstable terms across refits:" in captured.out
    page = out.read_text(encoding="utf-8")
    assert "unused" in page  # every column but the score and the label is a feature
    assert "Stability across refits" in page


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--score", "nope", "--label", "outcome"], "--score 'nope' is not a column"),
        (["--score", "risk", "--label", "nope"], "--label 'nope' is not a column"),
        (["--score", "risk", "--label", "outcome", "--features", "x"], "not in"),
        (["--score", "risk", "--label", "outcome", "--features", "risk"], "must not include"),
        (["--score", "risk", "--label", "age"], "binary outcome"),
        (["--score", "group", "--label", "outcome"], "not numbers"),
        (["--score", "risk", "--label", "outcome", "--cv", "1"], "cv must be an integer"),
    ],
)
def test_bad_arguments_exit_with_a_message(csv_path, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(csv_path), "--out", str(tmp_path / "x.html"), "--quiet", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["audit", str(tmp_path / "absent.csv"), "--score", "s", "--label", "y"])
    assert "cannot read" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_distill", "audit", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--score", "--label", "--features", "--out"):
        assert option in result.stdout
