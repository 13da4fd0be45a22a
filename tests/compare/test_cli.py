"""Tests of the command line ``python -m sklearn_distill audit``."""

import codecs
import html
import os
import re
import shlex
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from sklearn_distill.__main__ import _program_name, main, unsafe_columns

FEATURES = ["--features", "age", "group"]


def _audit_frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 70, size=n)
    group = rng.choice(["a", "b", "<b>c</b>"], size=n)
    hidden = rng.normal(size=n)
    logit = -(age - 40) / 10 + hidden
    outcome = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    risk = np.clip(np.round(5 + 2 * logit), 1, 10)
    # the highest score holds positive outcomes only: its Wilson bound lands a rounding error
    # above 1, which made the calibration picture fail
    outcome[risk == risk.max()] = 1
    frame = pd.DataFrame(
        {
            "age": age,
            "group": group,
            "risk": risk,
            "outcome": outcome,
            "unused": rng.normal(size=n),
        }
    )
    frame.loc[3, "group"] = np.nan
    return frame


def _leaky_frame(n=400, seed=1):
    """Audit data with one column of each unsafe kind beside two real features."""
    frame = _audit_frame(n, seed)
    rng = np.random.default_rng(seed)
    frame["person_id"] = rng.permutation(n) + 1000
    days = rng.integers(0, 700, size=n)
    frame["screening_date"] = (pd.Timestamp("2013-01-01") + pd.to_timedelta(days, "D")).strftime(
        "%Y-%m-%d"
    )
    flip = rng.uniform(size=n) < 0.02
    frame["rearrested"] = np.where(flip, 1 - frame["outcome"], frame["outcome"])
    frame["risk_band"] = np.where(frame["risk"] >= 6, "High", "Low")
    frame["assessment"] = "Risk of Recidivism"
    return frame


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "audit data.csv"
    _audit_frame().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def leaky_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "raw.csv"
    _leaky_frame().to_csv(path, index=False)
    return path


def _page_text(markup: str) -> str:
    """``markup``'s text as the page shows it: entities read, a span's tags removed (an option
    is set in one of its own: ``(<span class="option">--cv</span>)`` reads ``(--cv)``), the
    other tags read as a space."""
    inline = re.sub(r"</?span\b[^>]*>", "", markup)
    return html.unescape(re.sub(r"<[^>]+>", " ", inline))


def _settings_pairs(page: str) -> list[tuple[str, str]]:
    """The "Audit settings" of a report page, (key, value) as the page shows them."""
    settings = page[page.index("Audit settings") :]
    return [
        (_page_text(k), _page_text(v))
        for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", settings, re.S)
    ]


def _run(path, out, *extra):
    return main(
        ["audit", str(path), "--score", "risk", "--label", "outcome", "--out", str(out), *extra]
    )


def test_audit_command_writes_report_and_prints_findings(csv_path, tmp_path, capsys):
    out = tmp_path / "report.html"
    status = _run(csv_path, out, *FEATURES, "--cv", "2", "--n-bootstrap", "50")
    assert status == 0
    captured = capsys.readouterr()
    printed = " ".join(captured.out.split())  # the findings are wrapped to the terminal
    assert "Missing-feature test" in captured.out
    for method in ("pearson", "spearman", "kendall"):
        assert method in captured.out
    assert "after the Benjamini-Hochberg adjustment" in printed
    assert "How faithful the mimic is" in printed
    assert f"Report written to {out}" in captured.out
    # progress went to standard error while it worked
    assert "reading" in captured.err and "cross-fitted residuals" in captured.err
    page = out.read_text(encoding="utf-8")
    assert "<b>c</b>" not in page and "&lt;b&gt;c&lt;/b&gt;" in page
    assert "unused" not in page  # only the features asked for
    assert "Calibration of the score" in page  # drawn although a score value has one outcome
    assert "The black box as rules" in page


def test_spline_calibration_from_the_command_line(csv_path, tmp_path, capsys):
    out = tmp_path / "spline.html"
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]
    assert _run(csv_path, out, *args, "--calibration", "spline") == 0
    page = out.read_text(encoding="utf-8")
    settings = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", page, re.S)
    shown = {_page_text(key): _page_text(value) for key, value in settings}
    assert shown["calibration of the score (--calibration)"] == "spline"


def test_library_errors_speak_of_options_and_of_the_rows_left_out(tmp_path, capsys):
    frame = _audit_frame()
    frame["risk"] = (frame["risk"] > 5).astype(float)  # two values: no spline
    frame.loc[:9, "outcome"] = np.nan
    path = tmp_path / "two.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(
            ["audit", str(path), "--score", "risk", "--label", "outcome", "--features", "age",
             "--calibration", "spline", "--quiet", "--out", str(tmp_path / "r.html")]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert "--calibration spline needs a score with at least 3 distinct values; got 2" in err
    assert "Use --calibration sigmoid or isotonic." in err
    assert f"(10 of {len(frame)} rows were left out for a missing score or label.)" in err
    assert "calibration='" not in err


def test_correlated_features_warning_speaks_of_options_not_of_x_and_compare(tmp_path, capsys):
    frame = _audit_frame()
    frame["age_months"] = frame["age"] * 12 + np.random.default_rng(5).integers(0, 12, len(frame))
    path = tmp_path / "twins.csv"
    frame.to_csv(path, index=False)
    args = [*FEATURES, "age_months", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert _run(path, tmp_path / "r.html", *args, "--quiet") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "strongly correlated features" in err and "'age' and 'age_months'" in err
    assert "--features hold strongly correlated features" in err
    assert "the audit may flag a value of one" in err
    assert "X holds" not in err and "compare()" not in err


def test_quiet_and_stability(csv_path, tmp_path, capsys):
    out = tmp_path / "r.html"
    args = [*FEATURES, "unused", "--cv", "2", "--n-bootstrap", "20", "--stability", "2"]
    args += ["--rules", "0"]
    assert _run(csv_path, out, *args, "--quiet") == 0
    captured = capsys.readouterr()
    # no progress: standard error holds the library's warnings only, if any
    assert all(line.startswith("warning: ") for line in captured.err.splitlines())
    assert "Terms unstable across refits" in " ".join(captured.out.split())
    page = out.read_text(encoding="utf-8")
    assert "unused" in page
    assert page.index("Stability across refits") < page.index("Comparison table")
    assert "The black box as rules" not in page


def test_no_features_lists_columns_flags_leaks_and_audits_nothing(leaky_csv, tmp_path, capsys):
    out = tmp_path / "never.html"
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["audit", str(leaky_csv), "--score", "risk", "--label", "outcome", "--out", str(out)],
            prog="sklearn-distill",
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--features is required" in err
    flagged = {
        "person_id": "identifier",
        "screening_date": "dates",
        "rearrested": "recorded after the outcome",
        "risk_band": "a function of the score",
        "assessment": "one value on every row",
    }
    lines = err.splitlines()
    for column, reason in flagged.items():
        assert any(line.strip().startswith(f"{column}:") and reason in line for line in lines)
    # the suggested command names the safe columns and none of the unsafe ones
    command = lines[-1].strip()
    assert command.startswith(f"sklearn-distill audit {leaky_csv} --score risk --label outcome")
    assert command.split("--features")[1].split() == ["age", "group", "unused"]
    assert not out.exists()


def test_no_features_when_no_column_looks_unsafe_says_so(csv_path, tmp_path, capsys):
    # with nothing flagged, the listing must not point at "the others" or "the checks above"
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["audit", str(csv_path), "--score", "risk", "--label", "outcome",
             "--out", str(tmp_path / "r.html")],
            prog="sklearn-distill",
        )  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Columns that look unsafe" not in err
    assert "The others" not in err and "checks above" not in err
    assert "No column looks unsafe to these checks" in " ".join(err.split())
    assert err.splitlines()[-1].strip().split("--features")[1].split() == ["age", "group", "unused"]


def test_unsafe_columns_match_what_was_planted():
    frame = _leaky_frame()
    candidates = [c for c in frame.columns if c not in ("risk", "outcome")]
    reasons = unsafe_columns(frame, candidates, "risk", "outcome")
    assert set(reasons) == {"person_id", "screening_date", "rearrested", "risk_band", "assessment"}
    # a monotone copy of a continuous score is flagged; a feature the score leans on is not
    rng = np.random.default_rng(0)
    frame["score"] = frame["risk"] + rng.uniform(0, 0.5, len(frame))
    frame["score_points"] = 10 * frame["score"] ** 2
    reasons = unsafe_columns(frame, ["score_points", "age"], "score", "outcome")
    assert list(reasons) == ["score_points"] and "copy of the score" in reasons["score_points"]


def _household_frame(seed=3, n_households=60, size=4, decimals=6):
    """Rows of households (``case``): a region and a score of the household (one score value
    each, or shared by several households with few ``decimals``), and ``zip``, a code shared
    by two households, that says nothing of the outcome."""
    rng = np.random.default_rng(seed)
    case = np.repeat(np.arange(n_households), size)
    hidden = rng.normal(size=n_households)
    return pd.DataFrame(
        {
            "case": case,
            "age": rng.integers(18, 70, case.size),
            "region": rng.choice(["north", "south", "east", "west"], n_households)[case],
            "zip": rng.integers(0, n_households // 2, n_households).astype(str)[case],
            "risk": np.round(hidden + rng.normal(0, 2, n_households), decimals)[case],
            "outcome": (rng.uniform(size=n_households) < 1 / (1 + np.exp(-hidden)))[case].astype(
                int
            ),
        }
    )


def test_the_unsafe_column_checks_read_records_with_groups():
    # A household's score and its region are one value per score value by themselves, and a
    # code shared by two households "predicts" an outcome of the household from the other
    # rows of the household in a row-wise fold. With the records named, neither is flagged.
    frame = _household_frame()
    rows = unsafe_columns(frame, ["region", "age"], "risk", "outcome")
    assert list(rows) == ["region"] and "a function of the score" in rows["region"]
    records = unsafe_columns(
        frame, ["region", "age"], "risk", "outcome", groups=frame["case"].to_numpy()
    )
    assert records == {}
    # a score of a few values, shared by households: the code is only a leak row-wise
    frame = _household_frame(decimals=0)
    rows = unsafe_columns(frame, ["region", "zip", "age"], "risk", "outcome")
    assert list(rows) == ["zip"] and "alone predicts 'outcome' out of fold" in rows["zip"]
    records = unsafe_columns(frame, ["region", "zip", "age"], "risk", "outcome", groups=frame.case)
    assert records == {}
    # a column the score determines across records is still flagged with them
    frame["band"] = np.where(frame["risk"] > 0, "high", "low")
    records = unsafe_columns(frame, ["band"], "risk", "outcome", groups=frame["case"])
    assert "a function of the score" in records["band"]
    # identifiers of another length (pandas' index error) or with gaps (read silently) refused
    with pytest.raises(
        ValueError,
        match=rf"^groups must be one record identifier per row of frame \({len(frame)}\); got "
        rf"{len(frame) - 1}\.$",
    ):
        unsafe_columns(frame, ["age"], "risk", "outcome", groups=frame["case"].to_numpy()[1:])
    gaps = frame["case"].astype(object).where(frame.index > 0)
    with pytest.raises(
        ValueError, match=r"^groups must be record identifiers without missing values; got 1 "
    ):
        unsafe_columns(frame, ["age"], "risk", "outcome", groups=gaps)
    # a string or a scalar is the wrong type (numpy read "case" as an array of shape ()), and
    # so is a table of identifiers
    for given, shown in (
        ("case", "'case'"),
        (7, "7"),
        (frame[["case", "case"]], rf"an array of shape \({len(frame)}, 2\)"),
    ):
        with pytest.raises(
            TypeError,
            match=rf"^groups must be a 1-D array-like of {len(frame)} record identifiers; got "
            rf"{shown}\.$",
        ):
            unsafe_columns(frame, ["age"], "risk", "outcome", groups=given)


def test_the_command_line_passes_its_records_to_the_unsafe_column_checks(tmp_path, capsys):
    path = tmp_path / "households.csv"
    _household_frame().to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--groups", "case"]
    # the listing (no --features) and the audit's warning alike
    with pytest.raises(SystemExit):
        main(base)
    listing = capsys.readouterr().err
    assert "Columns of" in listing and "one value per value of" not in listing
    assert "out of fold with AUC" not in listing
    out = tmp_path / "r.html"
    args = ["--features", "age", "region", "zip", "--n-bootstrap", "20", "--rules", "0"]
    assert main([*base, *args, "--quiet", "--cv", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "look unsafe" not in err


def test_a_column_far_better_than_a_weak_score_is_not_only_called_a_leak():
    # a strong input that a weak score leaves out beats it by more than the margin, as a
    # column recorded after the outcome does: the reason says both, a near-perfect one only
    # the leak
    frame = _leaky_frame()
    rng = np.random.default_rng(3)
    frame["risk"] = rng.normal(size=len(frame))  # a score that reads almost nothing
    reasons = unsafe_columns(frame, ["age", "rearrested"], "risk", "outcome")
    assert "recorded after the outcome?" in reasons["age"]
    assert "an input the score leaves out" in reasons["age"]
    assert "recorded after the outcome?" in reasons["rearrested"]
    assert "leaves out" not in reasons["rearrested"]
    # the comparison of the two models shows such an input, not the missing-feature test
    # (information the score used that the features lack: the other way round); and the
    # reason is printed where the column is left out of --features and where it is in it
    assert "missing-feature test" not in reasons["age"]
    assert "belongs in --features" not in reasons["age"]


def test_a_column_far_better_than_a_weak_score_is_offered_back_in_the_listing(tmp_path, capsys):
    # the listing's command leaves out every flagged column; one that may be an input the
    # score leaves out is named as one to add if known before the outcome, a leak is not; and
    # when --features names it, the warning does not tell the user to put it there
    frame = _leaky_frame()
    frame["risk"] = np.random.default_rng(3).normal(size=len(frame))
    path = tmp_path / "weak.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome"], prog="sklearn-distill")
    err = " ".join(capsys.readouterr().err.split())
    command = err[err.rindex("sklearn-distill audit") :]
    command = command[: command.index("Flagged above")]
    assert " age" not in command and " rearrested" not in command and "group" in command
    assert "add to --features those known before the outcome: age, risk_band." in err
    assert "belongs in --features" not in err
    out = tmp_path / "r.html"
    assert _run(path, out, "--features", "age", "group", *FAST) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "age: alone predicts 'outcome'" in err and "an input the score leaves out" in err
    assert "belongs in --features" not in err and "add to --features" not in err


def test_an_identifier_repeated_with_whole_records_is_still_flagged():
    # records entered twice repeat their identifier with the whole row: exactly when the
    # identifier is needed as --groups, "a distinct value on every row" no longer held
    frame = _leaky_frame()
    twice = pd.concat([frame, frame.iloc[:30]], ignore_index=True)
    candidates = [c for c in twice.columns if c not in ("risk", "outcome")]
    reasons = unsafe_columns(twice, candidates, "risk", "outcome")
    assert "pass it as --groups person_id" in reasons["person_id"]
    assert "age" not in reasons


def test_the_suggested_command_carries_the_record_identifier(tmp_path, capsys):
    frame = _leaky_frame()
    twice = pd.concat([frame, frame.iloc[:30]], ignore_index=True)
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome"])
    suggested = capsys.readouterr().err.splitlines()[-1]
    assert "--groups person_id --features" in suggested
    assert "person_id" not in suggested.split("--features")[1]
    # and the options that say how to read the file (pasted, it must read it the same way)
    args = ["--encoding", "utf-8-sig", "--na-values", "-99", "--categorical", "group", "unused"]
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome", *args])
    suggested = capsys.readouterr().err.splitlines()[-1]
    assert "--encoding utf-8-sig --na-values=-99" in suggested
    assert "--categorical group --features" in suggested  # 'unused' is no feature there


def test_one_missing_label_keeps_the_leak_check(tmp_path, capsys):
    # the label checks read the rows that have a label and a score, as the audit does: one
    # blank label must not switch them off and recommend the leaking column
    frame = _leaky_frame().astype({"outcome": object})
    frame.loc[0, "outcome"] = np.nan
    frame.loc[1, "risk"] = np.nan
    candidates = [c for c in frame.columns if c not in ("risk", "outcome")]
    reasons = unsafe_columns(frame, candidates, "risk", "outcome")
    assert "recorded after the outcome" in reasons["rearrested"]
    data = tmp_path / "raw.csv"
    frame.to_csv(data, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(data), "--score", "risk", "--label", "outcome"], prog="sklearn-distill")
    command = capsys.readouterr().err.splitlines()[-1]
    assert command.split("--features")[1].split() == ["age", "group", "unused"]


def test_named_unsafe_features_and_dropped_rows_reach_the_findings_and_report(tmp_path, capsys):
    # rows without a score are dropped, and a named leak is audited: both were said on
    # standard error only, where a reader of the findings or the report never sees them
    frame = _leaky_frame()
    frame.loc[::25, "risk"] = np.nan
    dropped = int(frame["risk"].isna().sum())
    kept = len(frame) - dropped
    data, out = tmp_path / "raw.csv", tmp_path / "r.html"
    frame.to_csv(data, index=False)
    args = ["--features", "age", "rearrested", "--cv", "2", "--n-bootstrap", "20", "--quiet"]
    assert _run(data, out, *args, "--rules", "0") == 0
    captured = capsys.readouterr()
    assert "warning: --features includes columns that look unsafe" in captured.err
    assert "rearrested" in captured.err and "age:" not in captured.err
    printed = " ".join(captured.out.split())
    rows = f"rows: {kept} ({dropped} dropped: missing score or label)"
    assert rows in printed
    assert "features that look unsafe, audited as --features names them: rearrested" in printed
    assert printed.index(rows) < printed.index("How faithful the mimic is")
    page = out.read_text(encoding="utf-8")
    # the settings' own row count is replaced, not repeated
    assert re.findall(r"<dt>rows</dt><dd>(.*?)</dd>", page) == [rows.split(": ", 1)[1]]
    assert re.search(r"<dt>features that look unsafe</dt><dd>rearrested: ", page)
    findings = page[page.index("What the audit found") : page.index("Largest differences")]
    assert f"{dropped} of {len(frame)} rows were left out" in findings
    assert "Features that look unsafe, audited because --features names them: rearrested" in (
        _page_text(findings)
    )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--score", "nope", "--label", "outcome"], "--score names a column not in"),
        (["--score", "risk", "--label", "outcom"], "did you mean 'outcome'"),
        (["--score", "risk", "--label", "outcome", "--features", "agee"], "did you mean 'age'"),
        (["--score", "risk", "--label", "Outcome"], "'Outcome': did you mean 'outcome'"),
        # a list written with commas is one name to argparse: the way to write it is said
        (
            ["--score", "risk", "--label", "outcome", "--features", "age,group"],
            "'age,group': separate the columns with spaces, not commas: --features age group",
        ),
        (["--score", "risk", "--label", "outcome", "--features", "risk"], "must not include"),
        (["--score", "risk", "--label", "age", "--features", "group"], "binary outcome"),
        (["--score", "group", "--label", "outcome", "--features", "age"], "not numbers"),
        (["--score", "risk", "--label", "outcome", *FEATURES, "--cv", "1"], "cv must be"),
        (["--score", "risk", "--label", "outcome", *FEATURES, "--rules", "1"], "--rules must be"),
    ],
)
def test_bad_arguments_exit_with_a_message(csv_path, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(csv_path), "--out", str(tmp_path / "x.html"), "--quiet", *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "not in" in message.split("must")[0] or "did you mean" in message or "commas" in message:
        # a bad column name lists the columns there are
        assert "Columns of" in err and "age, group, risk, outcome, unused" in err


@pytest.mark.parametrize("option", ["--features", "--categorical"])
def test_a_data_file_given_after_the_features_is_said_to_be_read_as_one(
    csv_path, tmp_path, capsys, option
):
    # argparse takes the file for a feature and says no data file was given
    extra = ["--categorical", "group"] if option == "--features" else [*FEATURES, option]
    argv = ["audit", "--score", "risk", "--label", "outcome", *extra]
    if option == "--features":
        argv += FEATURES
    argv += ["group", str(csv_path)] if option == "--categorical" else [str(csv_path)]
    with pytest.raises(SystemExit) as exit_info:
        main(argv, prog="sklearn-distill")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(
        f"the following arguments are required: data ({str(csv_path)!r} was read as one of "
        f"{option}, whose values run to the next option: give the data file first, as in "
        f"sklearn-distill audit '{csv_path}' --score COL --label COL --features COL ...)"
    )
    # a data file not given at all keeps argparse's message
    with pytest.raises(SystemExit):
        main(["audit", "--score", "risk", "--label", "outcome", *FEATURES])
    assert capsys.readouterr().err.strip().endswith("the following arguments are required: data")


def test_out_is_checked_before_any_work(csv_path, tmp_path, capsys):
    before = csv_path.read_bytes()
    cases = [
        (str(csv_path), "--out must be an .html (or .htm) file"),  # the input itself
        (str(tmp_path / "absent" / "r.html"), "existing directory"),
        # a file where the folder should be: not said to be absent
        (str(csv_path / "r.html"), f"({str(csv_path)!r} is a file, not a directory)"),
        (str(tmp_path), "--out must be an .html (or .htm) file"),
    ]
    html_dir = tmp_path / "dir.html"
    html_dir.mkdir()
    cases.append((str(html_dir), "which is a directory"))
    for out, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            _run(csv_path, out, *FEATURES)  # no --quiet: progress would show any work done
        assert exit_info.value.code == 2
        captured = capsys.readouterr()
        assert message in captured.err
        assert "reading" not in captured.err
    assert csv_path.read_bytes() == before


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--n-bootstrap", "0"], "--n-bootstrap must be an integer >= 20; got 0."),
        (["--stability", "1"], "--stability must be 0 (no refits) or an integer >= 2; got 1."),
        (["--stability", "-2"], "--stability must be 0 (no refits) or an integer >= 2; got -2."),
        (["--confidence", "95"], "--confidence must be a finite number > 0 and < 1; got 95.0."),
        (["--cv", "0"], "--cv must be an integer >= 2; got 0."),
        (["--n-jobs", "0"], "--n-jobs must be a positive number of workers, or -1 for all cores"),
        (["--random-state", "-1"], "--random-state must be a seed from 0 to 4294967295; got -1."),
        (["--max-bins", "1"], "--max-bins must be an integer >= 3; got 1."),
        (["--min-weight", "-1"], "--min-weight must be a finite number >= 0; got -1.0."),
        (["--runs", "1"], "--runs must be an integer >= 2 (runs of adjacent values per feature)"),
        (["--runs", "-3"], "or 0 or none to leave the runs out; got '-3'."),
        (["--runs", "five"], "or 0 or none to leave the runs out; got 'five'."),
        (["--runs", "2.5"], "or 0 or none to leave the runs out; got '2.5'."),
    ],
)
def test_numeric_options_are_checked_before_any_work(csv_path, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        _run(csv_path, tmp_path / "r.html", *FEATURES, *extra)  # no --quiet: shows any work
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "reading" not in err


def test_out_never_overwrites_the_input(tmp_path, capsys):
    # even an input whose name looks like a report, reached through another path
    data = tmp_path / "data.html"
    _audit_frame().to_csv(data, index=False)
    before = data.read_bytes()
    os.link(data, tmp_path / "link.html")
    for out in (data, tmp_path / "link.html", tmp_path / "." / "data.html"):
        with pytest.raises(SystemExit):
            _run(data, out, *FEATURES)
        assert "must not be the data file" in capsys.readouterr().err
    assert data.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out(csv_path, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SystemExit):
            _run(csv_path, locked / "r.html", *FEATURES)
        assert "--out must be writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_an_existing_report_is_kept_until_overwritten(csv_path, tmp_path, capsys):
    # the writability check opens an existing file for appending: its content is untouched
    out = tmp_path / "old.html"
    out.write_text("old report", encoding="utf-8")
    with pytest.raises(SystemExit):
        _run(csv_path, out, "--features", "nope")
    capsys.readouterr()
    assert out.read_text(encoding="utf-8") == "old report"


def test_codes_written_in_digits_are_no_dates_but_date_stamps_are():
    from sklearn_distill.__main__ import _looks_like_dates

    rng = np.random.default_rng(4)
    zips = pd.Series([f"{z:05d}" for z in rng.integers(1001, 2791, 300)], dtype=object)
    branches = pd.Series([f"{b:03d}" for b in rng.integers(0, 40, 300)], dtype=object)
    stamps = pd.Series(
        pd.date_range("2020-01-01", periods=300, freq="D").strftime("%Y%m%d"), dtype=object
    )
    written = pd.Series(
        pd.date_range("2020-01-01", periods=300, freq="D").strftime("%d/%m/%Y"), dtype=object
    )
    assert not _looks_like_dates(zips) and not _looks_like_dates(branches)
    assert _looks_like_dates(stamps) and _looks_like_dates(written)


@pytest.mark.parametrize("case", ["header only", "every score missing"])
def test_a_file_with_no_row_to_audit_is_refused_in_one_line(tmp_path, capsys, case):
    frame = _audit_frame()
    if case == "header only":
        frame = frame.iloc[:0]
    else:
        frame["risk"] = np.nan
    path = tmp_path / "empty.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path), "--score", "risk", "--label", "outcome", "--features", "age"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds no row to audit" in err and "Traceback" not in err
    expected = (
        "a header and no data rows"
        if case == "header only"
        else f"each of its {len(frame)} rows misses --score 'risk' or --label 'outcome'"
    )
    assert expected in err


def test_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["audit", str(tmp_path / "absent.csv"), "--score", "s", "--label", "y", *FEATURES])
    assert "cannot read" in capsys.readouterr().err


def test_version_help_and_program_name(capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"], prog="sklearn-distill")
    assert exit_info.value.code == 0
    from sklearn_distill import __version__

    assert capsys.readouterr().out.strip() == f"sklearn-distill {__version__}"
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/sklearn-distill", "audit"])
    assert _program_name() == "sklearn-distill"
    monkeypatch.setattr(sys, "argv", ["/src/sklearn_distill/__main__.py"])
    assert _program_name() == "python -m sklearn_distill"


def test_module_entry_point_help_shows_defaults():
    result = subprocess.run(
        [sys.executable, "-m", "sklearn_distill", "audit", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m sklearn_distill audit")
    text = " ".join(result.stdout.split())
    for option in ("--score", "--label", "--features", "--out", "--runs N"):
        assert option in text
    for default in ("(default: report.html)", "(default: 5)", "(default: 1000)", "(default: 0.95)"):
        assert default in text


def test_groups_column_keeps_repeated_records_together(tmp_path, capsys):
    frame = _audit_frame(n=120)
    frame["case"] = np.arange(len(frame))
    twice = pd.concat([frame, frame], ignore_index=True)  # every case entered twice
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]
    assert _run(path, tmp_path / "a.html", *args) == 0
    err = capsys.readouterr().err
    # the advice is the command line's option, given once, without a source line
    repeated = [line for line in err.splitlines() if "repeat another row exactly" in line]
    assert len(repeated) == 1 and repeated[0].startswith("warning: ")
    assert "pass --groups COL" in repeated[0] and "fit(..., groups=" not in err
    assert ".py:" not in err
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*repeat another row", category=UserWarning)
        assert _run(path, tmp_path / "b.html", *args, "--groups", "case") == 0
    for bad, message in (
        (["--groups", "nope"], "--groups"),
        (["--groups", "age"], "must not include the score, the label or the groups"),
        (["--groups", "risk"], "--groups must be a column other than"),
    ):
        with pytest.raises(SystemExit):
            _run(path, tmp_path / "c.html", *args, *bad)
        assert message in capsys.readouterr().err


def _captured_audits(monkeypatch) -> list:
    """The audits the command line writes reports of, in order (the report still written)."""
    import sklearn_distill.report as report

    audits = []
    write = report.write_audit_report
    monkeypatch.setattr(
        report,
        "write_audit_report",
        lambda audit, *a, **k: audits.append(audit) or write(audit, *a, **k),
    )
    return audits


def test_runs_option_sets_the_runs_of_the_report_and_the_printed_findings(
    csv_path, tmp_path, capsys, monkeypatch
):
    # age: 51 values over 300 rows, about 6 rows each, too thin to test one by one
    import sklearn_distill.report as report

    asked = []
    write = report.write_audit_report
    monkeypatch.setattr(
        report,
        "write_audit_report",
        lambda *a, **k: asked.append(k["runs"]) or write(*a, **k),
    )
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]
    for runs, expected in (("3", 3), ("none", None), ("0", None), ("NONE", None)):
        out = tmp_path / f"runs {runs}.html"
        extra = [] if runs is None else ["--runs", runs]
        assert _run(csv_path, out, *args, *extra) == 0
        printed = " ".join(capsys.readouterr().out.split())
        page = " ".join(_page_text(out.read_text("utf-8")).split())
        assert asked[-1] == expected
        if expected is None:
            assert "On runs of adjacent values" not in printed + page
            assert "Not tested (value by value" in printed and "age: 4 of 51 values" in printed
        else:
            for text in (printed, page):
                assert "On runs of adjacent values (up to 3 runs per feature" in text
                assert "0 of 3 runs of the 1 feature too thin" in text
    assert _run(csv_path, tmp_path / "default.html", *args) == 0
    assert asked[-1] == 5
    assert "up to 5 runs per feature" in " ".join(capsys.readouterr().out.split())


def test_max_bins_and_min_weight_make_a_small_audits_values_testable(
    csv_path, tmp_path, capsys, monkeypatch
):
    # the "Not tested" advice (fewer bins, a lower min_weight) can be followed from the command
    # line: both models get the bins asked for, and more of age's values become testable
    import sklearn_distill.report as report

    audits = _captured_audits(monkeypatch)
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]
    assert _run(csv_path, tmp_path / "default.html", *args) == 0
    assert (
        _run(csv_path, tmp_path / "coarse.html", *args, "--max-bins", "8", "--min-weight", "5") == 0
    )
    capsys.readouterr()
    default, coarse = audits
    assert default.min_weight == 10 and coarse.min_weight == 5
    assert coarse.mimic_.student_.get_params()["max_bins"] == 8
    assert coarse.outcome_.get_params()["max_bins"] == 8

    def testable(audit):
        table = report.quiet_compare(audit, interactions=False)
        return int(table.loc[table["term"] == "age", "testable"].sum())

    assert testable(coarse) > testable(default)
    # the report states the threshold as given (a float option printed "10.000" before)
    assert "fewer than 10 rows are shown" in (tmp_path / "default.html").read_text("utf-8")
    assert "fewer than 5 rows are shown" in (tmp_path / "coarse.html").read_text("utf-8")


# ---------------------------------------------------------------------------- the outcome event
def _status_frame(n=300, seed=0):
    """Audit data whose label is text, ``defaulted``/``repaid``, and whose score rises with
    defaulting: the audit's default event, the second value in sorted order, is ``repaid``,
    which the score falls with."""
    frame = _audit_frame(n, seed)
    frame["outcome"] = np.where(frame["outcome"] == 1, "defaulted", "repaid")
    return frame


def _read(argv):
    """The command line's reading of the data, without an audit."""
    from sklearn_distill.__main__ import _parser, _read_audit_data

    parser, audit_parser = _parser("sklearn-distill")
    args = parser.parse_args(argv)
    args.prog = parser.prog
    return _read_audit_data(args, audit_parser, lambda message: None)


def test_event_option_chooses_which_label_value_is_coded_one(tmp_path, capsys):
    frame = _status_frame()
    path = tmp_path / "status.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", *FEATURES]
    default = _read(base)
    assert (default.event, default.other) == ("repaid", "defaulted")
    np.testing.assert_array_equal(default.y, (frame["outcome"] == "repaid").astype(int))
    chosen = _read([*base, "--event", "defaulted"])
    assert (chosen.event, chosen.other) == ("defaulted", "repaid")
    np.testing.assert_array_equal(chosen.y, 1 - default.y)
    # a 0/1 label read as numbers is matched by value; a blank label does not make it 1.0
    numeric = _audit_frame().astype({"outcome": float})
    numeric.loc[5, "outcome"] = np.nan
    numeric.to_csv(path, index=False)
    for given in ("0", "0.0"):
        zero = _read([*base, "--event", given])
        assert zero.event == 0 and zero.n_dropped == 1
        np.testing.assert_array_equal(zero.y, (numeric["outcome"].dropna() == 0).astype(int))
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exit_info:
        _read([*base, "--event", "late"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--event must be one of the two values of --label 'outcome'" in err
    assert "'defaulted' or 'repaid'" in err and "got 'late'" in err


def test_outcome_event_and_score_direction_are_printed_first(tmp_path, capsys):
    frame = _status_frame()
    path = tmp_path / "status.csv"
    frame.to_csv(path, index=False)
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "2", "--quiet"]
    for event, direction in (("repaid", "falling"), ("defaulted", "rising")):
        out = tmp_path / f"{event}.html"
        extra = [] if event == "repaid" else ["--event", event]
        assert _run(path, out, *args, *extra) == 0
        captured = capsys.readouterr()
        printed = " ".join(captured.out.split())
        first = printed[: printed.index("How faithful the mimic is")]
        assert f"outcome event: {event} (outcome = '{event}', coded 1" in first
        assert f"the log-odds below are those of outcome = '{event}'" in first
        assert f"the score was read as {direction} as outcome = '{event}'" in first
        assert ("by default the second in sorted order" in first) == (event == "repaid")
        # the library's warning about a falling score: once (the audit's models and the rules
        # each calibrate the score), naming the label's value, not a 0/1 code
        falls = [line for line in captured.err.splitlines() if "score falls as" in line]
        if direction == "falling":
            assert len(falls) == 1
            assert "P(outcome = 'repaid') rises" in falls[0]
        else:
            assert falls == []
        page = out.read_text(encoding="utf-8")
        # the label's name beside its value (--label outcome); --event as typed
        settings = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page, re.S)
        shown = {_page_text(key): _page_text(value) for key, value in settings}
        if extra:
            assert shown["outcome event (--event)"] == f"{event} (a value of outcome)"
            assert "outcome event" not in shown
        else:
            assert shown["outcome event"] == f"outcome = {event}"
        assert re.search(rf"<dt>score read as</dt><dd>{direction} as the outcome event", page)


def test_library_warns_once_of_a_falling_score_naming_the_label_value():
    from sklearn_distill import CompareAudit

    frame = _status_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning given is recorded, repeats included
        CompareAudit(cv=2, random_state=0, interactions=0).fit(
            frame[["age", "group"]], frame["outcome"], teacher_scores=frame["risk"]
        )
    falls = [str(w.message) for w in caught if "score falls as" in str(w.message)]
    assert len(falls) == 1  # not once per fitted mimic
    assert "P(y = 'repaid') rises" in falls[0]


# ---------------------------------------------------------------------------- reading the file
def test_a_constant_score_is_refused_before_the_column_checks(tmp_path, capsys):
    frame = _leaky_frame()
    frame["risk"] = 5.0
    path = tmp_path / "constant.csv"
    frame.to_csv(path, index=False)
    for extra in ([], ["--features", "age", "rearrested"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["audit", str(path), "--score", "risk", "--label", "outcome", *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--score 'risk' is constant: it holds 5 on every row" in err
        # the leak check never ran on the constant score: no false alarms, no warnings
        assert "recorded after the outcome" not in err and "warning" not in err.lower()


def test_separator_is_suggested_and_read_with_sep(tmp_path, capsys):
    frame = _audit_frame()
    semicolon = tmp_path / "export.csv"
    # a European spreadsheet export: ';' between fields, decimal commas, a byte-order mark
    frame.assign(risk=frame["risk"] + 0.5).to_csv(
        semicolon, sep=";", decimal=",", index=False, encoding="utf-8-sig"
    )
    tab = tmp_path / "export.tsv"
    frame.to_csv(tab, sep="\t", index=False)
    base = ["--score", "risk", "--label", "outcome", "--quiet"]
    for path, suggestion in ((semicolon, "Pass --sep ';'"), (tab, "Pass --sep '\\t'")):
        with pytest.raises(SystemExit):
            main(["audit", str(path), *base])
        err = capsys.readouterr().err
        assert "was read as one column" in err and suggestion in err
    with pytest.raises(SystemExit):
        main(["audit", str(semicolon), *base, "--sep", ";"])
    assert "pass --decimal ','" in capsys.readouterr().err  # its scores read 5,5
    for path, sep in ((semicolon, [";", "--decimal", ","]), (tab, ["\\t"])):
        data = _read(["audit", str(path), *base, *FEATURES, "--sep", *sep])
        assert list(data.X.columns) == ["age", "group"] and len(data.X) == len(frame)
        np.testing.assert_allclose(data.score, frame["risk"] + (0.5 if path == semicolon else 0))
    with pytest.raises(SystemExit):
        main(["audit", str(tab), *base, "--sep", ";;"])
    assert "--sep must be one character" in capsys.readouterr().err
    # a text field holding commas: pandas fails to tokenise before the file reads as one column
    charges = tmp_path / "charges.csv"
    charges.write_text("risk;outcome;charge\n0.5;1;fraud\n0.2;0;theft, petty, minor\n")
    with pytest.raises(SystemExit):
        main(["audit", str(charges), *base])
    err = capsys.readouterr().err
    assert "cannot read" in err and "Its header holds ';'" in err and "Pass --sep ';'" in err
    # pandas' reason and the advice read as one message, with no line break between them
    assert "saw 3. Its header holds ';'" in err


def test_a_header_naming_a_column_twice_is_refused(tmp_path, capsys):
    frame = _audit_frame()
    path = tmp_path / "twice.csv"
    header = ["age", "group", "age", "risk", "outcome", "unused"]
    frame[["age", "group", "age", "risk", "outcome", "unused"]].to_csv(
        path, index=False, header=header
    )
    for extra in ([], FEATURES):
        with pytest.raises(SystemExit) as exit_info:
            main(["audit", str(path), "--score", "risk", "--label", "outcome", *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        columns = [str(i + 1) for i, name in enumerate(header) if name == "age"]
        assert f"names a column more than once: 'age' (columns {' and '.join(columns)})" in err
        assert "'age.1'" in err  # what pandas would have called the second one


@pytest.mark.parametrize("blank", [[4], [0], [1, 4]], ids=["last", "first", "two"])
def test_a_blank_header_cell_over_values_is_refused_with_its_position(tmp_path, capsys, blank):
    # pandas would name such a column "Unnamed: 4", a name that is not the file's
    frame = _audit_frame()
    header = list(frame.columns)
    for index in blank:
        header[index] = "" if index != 1 else "  "
    path = tmp_path / "blank header.csv"
    frame.to_csv(path, index=False, header=header)
    out = tmp_path / "report.html"
    # refused as a repeated name is: whether --features names the column or not
    features = [c for k, c in enumerate(frame.columns) if k not in blank and c in ("age", "group")]
    for extra in ([], ["--features", *features]):
        with pytest.raises(SystemExit) as exit_info:
            _run(path, out, *extra)
        assert exit_info.value.code == 2
        err = " ".join(capsys.readouterr().err.split())
        numbers = [str(k + 1) for k in blank]
        where = f"column {numbers[0]}" if len(blank) == 1 else f"columns {' and '.join(numbers)}"
        assert f"has no name in its header for {where} of {len(header)}" in err, err
        assert "more than once" not in err  # two blank cells are not one name given twice
        assert ("to_csv writes without index=False" in err) == (blank[0] == 0)
        assert not out.exists()


def test_a_blank_header_cell_over_an_empty_column_is_left_out(tmp_path, capsys):
    # a separator closing every line: a column with no name and no value, nothing to refuse
    frame = _audit_frame()
    lines = frame.to_csv(index=False).splitlines()
    path = tmp_path / "closing.csv"
    path.write_text("".join(line + ",\n" for line in lines), encoding="utf-8")
    out = tmp_path / "report.html"
    assert _run(path, out, *FEATURES, "--quiet") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"note: column {frame.shape[1] + 1} of" in err and "left out" in err
    assert "Unnamed" not in err and "Unnamed" not in out.read_text(encoding="utf-8")
    with pytest.raises(SystemExit):  # the columns listed are the file's own
        _run(path, out)
    err = capsys.readouterr().err
    assert "besides the score and the label: age, group, unused\n" in err


def test_data_lines_closed_by_a_separator_the_header_lacks_read_as_the_file_means(tmp_path, capsys):
    # pandas reads `a,b` over `1,2,` as row label 1 and b = 2 under `a`: every value shifted
    frame = _audit_frame()
    clean, closed = tmp_path / "clean.csv", tmp_path / "closed.csv"
    frame.to_csv(clean, index=False)
    header, *lines = frame.to_csv(index=False).splitlines()
    closed.write_text(header + "\n" + "".join(line + ",\n" for line in lines), encoding="utf-8")
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert _run(clean, tmp_path / "clean.html", *args) == 0
    expected = capsys.readouterr().out
    assert _run(closed, tmp_path / "closed.html", *args) == 0
    assert capsys.readouterr().out.replace("closed.", "clean.") == expected


def test_pandas_reading_warnings_still_reach_the_user(tmp_path, capsys, monkeypatch):
    # the read that checks the header's length records pandas' warnings: the others pass on
    path = tmp_path / "risk.csv"
    _audit_frame().to_csv(path, index=False)
    read_csv, calls = pd.read_csv, []

    def mixed_types(*args, **kwargs):
        if not calls:  # the first read, the file's own (later ones re-read parts as text)
            warnings.warn("Columns (3) have mixed types.", pd.errors.DtypeWarning, stacklevel=2)
        calls.append(args)
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", mixed_types)
    assert _run(path, tmp_path / "report.html", *FEATURES, *FAST) == 0
    assert "Columns (3) have mixed types." in capsys.readouterr().err


@pytest.mark.parametrize("extra", [1, 2])
def test_data_lines_with_more_fields_than_header_names_are_refused(tmp_path, capsys, extra):
    # row labels without a name in the header (or a header missing names): pandas would read
    # the first fields as row labels and shift every value under another column's name
    frame = _audit_frame()
    header, *lines = frame.to_csv(index=False).splitlines()
    labels = [",".join(f"r{k}-{j}" for j in range(extra)) for k in range(len(lines))]
    path = tmp_path / "labelled.csv"
    path.write_text(
        header + "\n" + "".join(f"{lab},{line}\n" for lab, line in zip(labels, lines)),
        encoding="utf-8",
    )
    out = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exit_info:
        _run(path, out, *FEATURES)
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    names = frame.shape[1]
    assert f"has {names + extra} fields on its data lines but {names} names in its header" in err
    assert not out.exists()


def test_a_score_cell_that_is_not_a_number_is_quoted_with_its_line(tmp_path, capsys):
    frame = _audit_frame().astype({"risk": object})
    bad_rows = [7, 40]
    for row in bad_rows:
        frame.loc[row, "risk"] = f"{frame.loc[row, 'risk']}%"
    path = tmp_path / "percent.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome", *FEATURES])
    err = " ".join(capsys.readouterr().err.split())
    match = re.search(r"not numbers: (\d+) of (\d+) rows, e\.g\. '([^']*)' .*\(line (\d+) of", err)
    assert match, err
    assert (int(match[1]), int(match[2])) == (len(bad_rows), len(frame))
    # the quoted value is the one on the line named
    lines = path.read_text(encoding="utf-8").splitlines()
    assert match[3] in lines[int(match[4]) - 1].split(",")
    assert "1.2, not 1.2%" in err


def test_the_line_quoted_for_a_bad_score_cell_counts_blank_lines(tmp_path, capsys):
    # pandas skips blank lines: the data row's number is not its line's
    frame = _audit_frame().astype({"risk": object})
    frame.loc[30, "risk"] = "high"
    lines = frame.to_csv(index=False).splitlines()
    lines[3:3] = ["", ""]  # two blank lines after data row 2
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome", *FEATURES])
    err = " ".join(capsys.readouterr().err.split())
    match = re.search(r"'high' in data row (\d+) \(line (\d+) of", err)
    assert match, err
    written = path.read_text(encoding="utf-8").splitlines()
    assert "high" in written[int(match[2]) - 1].split(",")
    assert int(match[1]) == 31


def test_categorical_option_reads_numeric_codes_as_categories(tmp_path, capsys):
    frame = _audit_frame()
    rng = np.random.default_rng(3)
    frame["zip"] = rng.choice(["01234", "02139", "10001", "94110"], size=len(frame))
    path = tmp_path / "zips.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--features", "age"]
    # pandas reads "01234" as 1234: the leading zero keeps the column as codes, with a note
    as_read = _read([*base, "zip"])
    assert isinstance(as_read.X["zip"].dtype, pd.CategoricalDtype)
    assert as_read.X["zip"].tolist() == frame["zip"].tolist()
    assert "note: column 'zip' holds numbers with a leading zero" in capsys.readouterr().err
    as_codes = _read([*base, "zip", "--categorical", "zip"])
    assert isinstance(as_codes.X["zip"].dtype, pd.CategoricalDtype)
    assert as_codes.X["zip"].tolist() == frame["zip"].tolist()  # leading zeros kept
    assert pd.api.types.is_integer_dtype(as_codes.X["age"])
    for extra, message in (
        (["--categorical", "zip"], "--categorical must name columns of --features; got 'zip'"),
        (["zip", "--categorical", "zipp"], "did you mean 'zip'"),
    ):
        with pytest.raises(SystemExit):
            _read([*base, *extra])
        assert message in capsys.readouterr().err


def test_na_and_none_written_in_text_columns_stay_categories(tmp_path, capsys):
    # "NA" (North America) and "None" (no prior offence) were read as missing, silently
    frame = _audit_frame()
    rng = np.random.default_rng(4)
    frame["region"] = rng.choice(["NA", "EU", "AS"], size=len(frame)).astype(object)
    frame.loc[:9, "region"] = np.nan  # truly unknown: an empty cell
    frame["prior"] = rng.choice(["None", "Theft"], size=len(frame))
    frame.loc[5, "age"] = np.nan  # a missing number, written NA as R writes it
    path = tmp_path / "regions.csv"
    frame.to_csv(path, index=False, na_rep="")
    text = path.read_text(encoding="utf-8").splitlines()
    row = 5 + 1
    text[row] = "NA" + text[row]  # the age cell of data row 6 is "NA"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    data = _read([*base, "--features", "age", "region", "prior", "--categorical", "prior"])
    err = capsys.readouterr().err
    assert "note: column 'region' holds 'NA'" in err and "--na-values=NA to" in err
    assert "note: column 'prior' holds 'None'" in err
    region = data.X["region"]
    assert region.isna().sum() == 10
    assert (region == "NA").sum() == (frame["region"] == "NA").sum()
    assert data.X["prior"].tolist() == frame["prior"].tolist()
    assert np.isnan(data.X["age"].iloc[5]) and data.X["age"].notna().sum() == len(frame) - 1
    # --na-values says which texts mean missing, in every column, beside pandas' own
    data = _read([*base, "--features", "age", "region", "--na-values", "NA"])
    assert data.X["region"].isna().sum() == 10 + (frame["region"] == "NA").sum()
    assert "note:" not in capsys.readouterr().err
    data = _read([*base, "--features", "age", "region", "--na-values", "-99"])
    assert np.isnan(data.X["age"].iloc[5]) and pd.api.types.is_numeric_dtype(data.X["age"])
    assert (data.X["region"] == "NA").sum() == (frame["region"] == "NA").sum()


def test_na_in_a_yes_no_column_or_the_label_is_missing(tmp_path, capsys):
    frame = _audit_frame()
    frame["insured"] = np.where(np.arange(len(frame)) % 3, "TRUE", "FALSE")
    frame.loc[:4, "insured"] = "NA"
    frame["paid"] = np.where(frame["outcome"] == 1, "yes", "no")
    frame.loc[5:7, "paid"] = "NA"  # the label's NA rows are dropped, as before
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "paid"]
    data = _read([*base, "--features", "age", "insured"])
    assert data.X["insured"].isna().sum() == 5 and "note:" not in capsys.readouterr().err
    assert data.n_dropped == 3 and len(data.X) == len(frame) - 3


def test_decimal_comma_files_read_dotted_thousands(tmp_path, capsys):
    # "12.500" in a file written with decimal commas is 12500; it was read as 12.5 beside 950
    frame = _audit_frame()
    income = np.random.default_rng(5).integers(300, 40000, size=len(frame))
    lines = ["age;income;risk;outcome"] + [
        f"{a};{i:,};{str(r).replace('.', ',')};{o}".replace(",", ".", 1 if i >= 1000 else 0)
        for a, i, r, o in zip(frame["age"], income, frame["risk"], frame["outcome"])
    ]
    lines[5] = lines[5].replace(lines[5].split(";")[1], "NA")  # a missing number, as R writes
    path = tmp_path / "thousands.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--sep", ";"]
    data = _read([*base, "--decimal", ",", "--features", "age", "income"])
    expected = income.astype(float)
    expected[4] = np.nan  # data row 4 is line 5 of the file
    np.testing.assert_array_equal(data.X["income"].to_numpy(), expected)
    np.testing.assert_allclose(data.score, frame["risk"])
    err = capsys.readouterr().err
    assert "note: column 'income' read as numbers with '.' between thousands" in err
    assert "note: column 'income' holds" not in err  # NA in a column of numbers is missing
    # columns with other dots are left as they were: dates (not a feature here) and 0.125
    lines[0] += ";day;share"
    for row in range(1, len(lines)):
        lines[row] += f";{row % 28 + 1:02d}.12.2023;0.{row % 900 + 100}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = _read([*base, "--decimal", ",", "--features", "age", "income", "share"])
    assert "note: column 'share'" not in capsys.readouterr().err
    assert data.X["income"].notna().sum() == len(frame) - 1
    # 12.500 beside 12.5 cannot be read one way: refused (read as text, 12.500 became 12.5)
    lines[3] = lines[3].replace(lines[3].split(";")[1], "12.5", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        _read([*base, "--decimal", ",", "--features", "age", "income"])
    err = capsys.readouterr().err
    assert "column 'income' holds numbers written with a dot between thousands" in err
    assert "'12.5'" in err


def test_files_in_another_encoding_are_read_with_encoding(tmp_path, capsys):
    # a German spreadsheet export: cp1252 text, which UTF-8 cannot read
    frame = _audit_frame()
    frame["city"] = np.where(np.arange(len(frame)) % 2, "München", "Köln")
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False, sep=";", decimal=",", encoding="cp1252")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--sep", ";"]
    base += ["--decimal", ",", "--features", "age", "city"]
    with pytest.raises(SystemExit):
        _read(base)
    assert "as utf-8 text" in capsys.readouterr().err
    data = _read([*base, "--encoding", "cp1252"])
    assert set(data.X["city"]) == {"München", "Köln"}
    for name in ("klingon", "rot13"):  # rot13 is a codec, not a text encoding
        with pytest.raises(SystemExit):
            _read([*base, "--encoding", name])
        assert "--encoding must name a text encoding" in capsys.readouterr().err
    # the other way round: UTF-8 with its byte-order mark, read as cp1252, would be garbled
    frame.to_csv(path, index=False, sep=";", decimal=",", encoding="utf-8-sig")
    with pytest.raises(SystemExit):
        _read([*base, "--encoding", "cp1252"])
    assert "starts with UTF-8's byte-order mark" in capsys.readouterr().err
    assert set(_read(base).X["city"]) == {"München", "Köln"}
    # Python's own name for UTF-8 with its mark is the right encoding for such a file
    assert set(_read([*base, "--encoding", "utf-8-sig"]).X["city"]) == {"München", "Köln"}


def test_utf8_without_a_byte_order_mark_is_not_read_in_a_one_byte_encoding(tmp_path, capsys):
    # read as cp1252, every name and cell beyond ASCII had been garbled silently: the report
    # named the categories "MÃ¼nchen" and "KÃ¶ln"
    frame = _audit_frame()
    frame["city"] = np.where(np.arange(len(frame)) % 2, "München", "Köln")
    path = tmp_path / "utf8.csv"
    frame.to_csv(path, index=False, encoding="utf-8")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    base += ["--features", "age", "city"]
    for encoding, garbled in (("cp1252", "KÃ¶ln"), ("latin-1", "KÃ¶ln"), ("mac-roman", "K√∂ln")):
        with pytest.raises(SystemExit):
            _read([*base, "--encoding", encoding])
        err = capsys.readouterr().err
        assert f"reads as UTF-8 text, which --encoding {encoding} would garble" in err
        assert f"('Köln' read as {garbled!r}); leave --encoding out" in err
    assert set(_read(base).X["city"]) == {"München", "Köln"}
    assert set(_read([*base, "--encoding", "utf8"]).X["city"]) == {"München", "Köln"}
    # ASCII text reads alike in either encoding, and cp1252 text is read in its own
    frame["city"] = np.where(np.arange(len(frame)) % 2, "Munich", "Cologne")
    frame.to_csv(path, index=False)
    assert set(_read([*base, "--encoding", "cp1252"]).X["city"]) == {"Munich", "Cologne"}
    frame["city"] = np.where(np.arange(len(frame)) % 2, "München", "Köln")
    frame.to_csv(path, index=False, encoding="cp1252")
    assert set(_read([*base, "--encoding", "cp1252"]).X["city"]) == {"München", "Köln"}


def test_windows_text_is_not_read_as_latin_1(tmp_path, capsys):
    # latin-1 reads every byte, so cp1252's euro sign and curly quotes (bytes 0x80-0x9F) had
    # become C1 control characters in the categories and the report, silently
    frame = _audit_frame()
    frame["price"] = np.where(
        np.arange(len(frame)) % 2,
        "5\N{EURO SIGN}",
        "\N{LEFT DOUBLE QUOTATION MARK}ok\N{RIGHT DOUBLE QUOTATION MARK}",
    )
    path = tmp_path / "windows.csv"
    frame.to_csv(path, index=False, encoding="cp1252")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    base += ["--features", "age", "price"]
    for encoding in ("latin-1", "iso-8859-1", "latin1"):
        with pytest.raises(SystemExit):
            _read([*base, "--encoding", encoding])
        err = capsys.readouterr().err
        assert f"holds bytes 0x80-0x9F, which --encoding {encoding} reads as control" in err
        # the first row's word, as written and as latin-1 reads it
        written = "\N{LEFT DOUBLE QUOTATION MARK}ok\N{RIGHT DOUBLE QUOTATION MARK}"
        read = "\x93ok\x94"
        said = " ".join(err.split())
        assert f"({written!r} read as {read!r}): the file reads as Windows text (cp1252)" in said
        assert f"if {written!r} is what it says, pass --encoding cp1252, else" in said
    expected = {"5\N{EURO SIGN}", "\N{LEFT DOUBLE QUOTATION MARK}ok\N{RIGHT DOUBLE QUOTATION MARK}"}
    assert set(_read([*base, "--encoding", "cp1252"]).X["price"]) == expected
    # latin-1 text without those bytes (accents are 0xC0-0xFF in both) is read as before
    frame["price"] = np.where(
        np.arange(len(frame)) % 2,
        "caf\N{LATIN SMALL LETTER E WITH ACUTE}",
        "na\N{LATIN SMALL LETTER I WITH DIAERESIS}ve",
    )
    frame.to_csv(path, index=False, encoding="latin-1")
    read = set(_read([*base, "--encoding", "latin-1"]).X["price"])
    assert read == {
        "caf\N{LATIN SMALL LETTER E WITH ACUTE}",
        "na\N{LATIN SMALL LETTER I WITH DIAERESIS}ve",
    }
    # bytes 0x80-0x9F that cp1252 does not read either: refused, without cp1252's reading
    path.write_bytes(path.read_bytes().replace(b"caf\xe9", b"caf\x81"))
    with pytest.raises(SystemExit):
        _read([*base, "--encoding", "latin-1"])
    said = " ".join(capsys.readouterr().err.split())
    assert "('caf\\x81'), and it is not cp1252 text either (the Windows code page for" in said
    assert "pass the file's own encoding, one that reads them, such as a DOS code page" in said
    # the code page that has just failed is not offered as the way out; those named read it
    assert "--encoding cp1252" not in said
    for named in ("cp850", "cp437", "mac-roman"):
        assert named in said
        path.read_bytes().decode(named)


@pytest.mark.parametrize(
    ("encoding", "kin", "written"),
    [
        ("iso-8859-15", "cp1252", "5\N{EURO SIGN}"),
        ("iso-8859-2", "cp1250", "\N{LATIN CAPITAL LETTER S WITH CARON}ibenik"),
        ("iso-8859-5", "cp1251", "\N{CYRILLIC CAPITAL LETTER LJE}ubljana"),
        ("iso-8859-6", "cp1256", "\N{ARABIC LETTER PEH}\N{ARABIC LETTER ALEF}rs"),
        ("iso-8859-7", "cp1253", "\N{LEFT DOUBLE QUOTATION MARK}\N{GREEK SMALL LETTER ALPHA}"),
        ("iso-8859-8", "cp1255", "\N{LEFT DOUBLE QUOTATION MARK}\N{HEBREW LETTER SHIN}"),
        ("latin5", "cp1254", "\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}zmir\N{EN DASH}Ankara"),
        ("iso-8859-13", "cp1257", "\N{DOUBLE LOW-9 QUOTATION MARK}Vilnius"),
        ("tis-620", "cp874", "\N{THAI CHARACTER KO KAI}\N{HORIZONTAL ELLIPSIS}"),
    ],
)
def test_windows_text_is_not_read_with_its_iso_8859_cousin(encoding, kin, written, tmp_path):
    # each ISO 8859 part reads bytes 0x80-0x9F as C1 controls, where the Windows code page of
    # the same script writes letters and punctuation: Windows text read so had lost them
    # silently (latin-1 alone was checked)
    frame = _audit_frame()
    frame["place"] = np.where(np.arange(len(frame)) % 2, written, "plain")
    path = tmp_path / "windows.csv"
    frame.to_csv(path, index=False, encoding=kin)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    base += ["--features", "age", "place"]
    read = written.encode(kin).decode(encoding)
    assert any("\x80" <= letter <= "\x9f" for letter in read)
    err = _refusal([*base, "--encoding", encoding])
    assert f"holds bytes 0x80-0x9F, which --encoding {encoding} reads as control" in err
    said = " ".join(err.split())
    assert f"({written!r} read as {read!r}): the file reads as Windows text ({kin})" in said
    assert f"if {written!r} is what it says, pass --encoding {kin}, else" in said
    assert set(_read([*base, "--encoding", kin]).X["place"]) == {written, "plain"}
    # a byte the Windows code page leaves unassigned (cp1256 assigns all): not its text either
    unassigned = [b for b in range(0x80, 0x100) if _undefined(bytes([b]), kin)]
    assert bool(unassigned) == (kin != "cp1256")
    if unassigned:
        path.write_bytes(path.read_bytes().replace(b"plain", b"pl" + bytes(unassigned[:1])))
        said = " ".join(_refusal([*base, "--encoding", encoding]).split())
        assert f"and it is not {kin} text either (the Windows code page for" in said
        assert "pass the file's own encoding, one that reads them" in said
        assert f"--encoding {kin}" not in said  # not the code page that has just failed
    # text of the ISO encoding that holds no such byte is read in it as before
    frame["place"] = np.where(np.arange(len(frame)) % 2, "plain", "text")
    frame.to_csv(path, index=False, encoding=encoding)
    assert set(_read([*base, "--encoding", encoding]).X["place"]) == {"plain", "text"}


def _refusal(argv) -> str:
    """The message with which the command line's reading of the data refuses ``argv``."""
    import contextlib
    import io

    stream = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stderr(stream):
        _read(argv)
    return stream.getvalue()


def _undefined(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return True
    return False


def test_the_c1_check_covers_the_codecs_that_read_c1_controls():
    # found from the codec, not from a list: every part of ISO 8859 that Python has, and no
    # Windows code page; the kin offered reads no byte as a C1 control
    from sklearn_distill.__main__ import _WINDOWS_KIN, _reads_c1_controls

    parts = [f"iso-8859-{n}" for n in (*range(1, 12), *range(13, 17))]
    assert all(_reads_c1_controls(name) for name in [*parts, "tis-620", "latin-1"])
    windows = ["cp874", *(f"cp125{n}" for n in range(9)), "utf-8", "mac-roman", "cp437"]
    assert not any(_reads_c1_controls(name) for name in windows)
    for iso, (kin, _) in _WINDOWS_KIN.items():
        assert _reads_c1_controls(iso)
        read = [bytes([b]).decode(kin, "ignore") for b in range(0x80, 0xA0)]
        assert not any("\x80" <= letter <= "\x9f" for letter in "".join(read)), kin


def test_the_c1_check_reads_a_large_file_whole(tmp_path):
    # the file is read in pieces of 1 MiB: a word across two pieces is shown whole, and the
    # Windows code page must read the whole file, not only from the first byte 0x80-0x9F on
    from sklearn_distill.__main__ import _c1_garbled

    path = tmp_path / "large.csv"
    filler = b"a,b\n" * ((1 << 20) // 4 - 1) + b"12,"  # the word starts 1 byte short of 1 MiB
    path.write_bytes(filler + b"ab\x80cd,1\n")
    assert _c1_garbled(path, "latin-1") == ("ab\N{EURO SIGN}cd", "ab\x80cd", "cp1252")
    assert _c1_garbled(path, "iso-8859-7") == ("ab\N{EURO SIGN}cd", "ab\x80cd", "cp1253")
    # greek text of iso-8859-7 (0xAA, which cp1253 leaves unassigned) before the byte 0x80:
    # not cp1253 text, and not said to be
    path.write_bytes(b"\xaa,b\n" + filler + b"ab\x80cd,1\n")
    assert _c1_garbled(path, "iso-8859-7") == (None, "ab\x80cd", "cp1253")
    # no such byte: nothing to say, as for a file of another encoding
    path.write_bytes(filler + b"caf\xe9,1\n")
    assert _c1_garbled(path, "latin-1") is None and _c1_garbled(path, "cp1252") is None


def test_a_dos_file_that_a_code_page_reads_is_not_said_to_be_windows_text(tmp_path, capsys):
    # cp437 (DOS) writes "e acute" as 0x82, which cp1252 reads as a low quote: the file reads
    # as cp1252 without being Windows text, and had been said to be; the word as cp1252 reads
    # it is shown for the user to judge, and the code page given only if it is the file's
    frame = _audit_frame()
    frame["place"] = np.where(
        np.arange(len(frame)) % 2, "caf\N{LATIN SMALL LETTER E WITH ACUTE}", "x"
    )
    path = tmp_path / "dos.csv"
    path.write_bytes(frame.to_csv(index=False).encode("cp437"))
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--features", "age"]
    with pytest.raises(SystemExit):
        _read([*base, "--encoding", "latin-1"])
    err = " ".join(capsys.readouterr().err.split())
    assert "it is Windows text" not in err, err
    shown = "caf\N{SINGLE LOW-9 QUOTATION MARK}"
    assert f"({shown!r} read as 'caf\\x82'): the file reads as Windows text (cp1252); if" in err
    assert f"if {shown!r} is what it says, pass --encoding cp1252, else the file's own" in err
    # the file's own encoding reads it
    assert set(_read([*base, "--encoding", "cp437"]).X.columns) == {"age"}


def test_a_file_with_nul_bytes_is_not_called_windows_text(tmp_path, capsys):
    # UTF-16 without a byte-order mark: Greek letters write bytes 0x80-0x9F (alpha is 0x91
    # 0x03), and a NUL stands beside each ASCII letter, which no one-byte text holds; the code
    # pages read NUL as a character, so that it had been called Windows text (cp1253, cp1252)
    frame = _audit_frame()
    frame["place"] = np.where(np.arange(len(frame)) % 2, "\u0391\u03b8\u03ae\u03bd\u03b1", "x")
    base = ["audit", None, "--score", "risk", "--label", "outcome", "--features", "age"]
    for codec in ("utf-16-le", "utf-16-be"):
        path = tmp_path / f"{codec}.csv"
        path.write_bytes(frame.to_csv(index=False).encode(codec))
        base[1] = str(path)
        for encoding in ("iso-8859-7", "latin-1"):
            with pytest.raises(SystemExit):
                _read([*base, "--encoding", encoding])
            err = capsys.readouterr().err
            assert "holds bytes 0x80-0x9F" in err and "Windows text" not in err, err
            assert (
                "NUL" in err
                and f"UTF-16 text without a byte-order mark: pass --encoding {codec}" in err
            )
        # the encoding named reads the file
        assert set(_read([*base, "--encoding", codec]).X.columns) == {"age"}
    # other bytes with NULs (a binary file) are not said to be any text
    junk = bytes(range(256)) * 40
    path = tmp_path / "junk.csv"
    path.write_bytes(frame.to_csv(index=False).encode() + junk)
    base[1] = str(path)
    for encoding in ("iso-8859-5", "latin-1"):
        with pytest.raises(SystemExit):
            _read([*base, "--encoding", encoding])
        err = capsys.readouterr().err
        assert "holds bytes 0x80-0x9F" in err and "NUL" in err, err
        assert "Windows text" not in err and "UTF-16" not in err, err


def test_an_iso_8859_part_without_a_windows_kin_still_refuses_c1_bytes(tmp_path):
    # iso-8859-16 (Romanian, among others) has no Windows code page of its own: refused all
    # the same, without a code page to pass
    frame = _audit_frame()
    frame["place"] = np.where(
        np.arange(len(frame)) % 2, "Ia\N{LATIN SMALL LETTER S WITH COMMA BELOW}i", "x"
    )
    path = tmp_path / "romanian.csv"
    frame.to_csv(path, index=False, encoding="iso-8859-16")
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    base += ["--features", "age", "place", "--encoding", "iso-8859-16"]
    assert "Ia\N{LATIN SMALL LETTER S WITH COMMA BELOW}i" in set(_read(base).X["place"])
    path.write_bytes(path.read_bytes().replace(b"Ia", b"\x93Ia"))
    err = _refusal(base)
    assert "which --encoding iso-8859-16 reads as control characters ('\\x93Ia" in err
    assert "which text in iso-8859-16 does not hold: pass the file's own encoding" in err


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-32-le"],
)
def test_a_utf16_or_utf32_file_is_named_not_read_as_another_encoding(
    encoding, mark, tmp_path, capsys
):
    # a spreadsheet's "Unicode text" export: UTF-16 with its byte-order mark. Read as UTF-8 it
    # failed with advice to pass cp1252, under which every name and cell held NUL characters
    frame = _audit_frame()
    frame["city"] = np.where(np.arange(len(frame)) % 2, "München", "Köln")
    path = tmp_path / "unicode.csv"
    family = encoding[:6].upper()
    path.write_bytes(mark + frame.to_csv(index=False).encode(encoding))
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    base += ["--features", "age", "city"]
    for given in ([], ["--encoding", "cp1252"], ["--encoding", "utf-8"]):
        with pytest.raises(SystemExit):
            _read([*base, *given])
        err = capsys.readouterr().err
        assert f"starts with {family}'s byte-order mark" in err
        assert f"pass --encoding {family.lower()}" in err
    data = _read([*base, "--encoding", family.lower()])
    assert list(data.X.columns) == ["age", "city"]
    assert set(data.X["city"]) == {"München", "Köln"}


def test_the_label_named_as_the_score_is_refused(csv_path, tmp_path, capsys):
    # the outcome as its own black box: a typo, leakage rather than an audit; refused as
    # --features holding the label is, before any model is fitted and without a report
    out = tmp_path / "same.html"
    command = ["audit", str(csv_path), "--score", "outcome", "--label", "outcome"]
    with pytest.raises(SystemExit):
        main([*command, "--out", str(out), *FEATURES])
    err = capsys.readouterr().err
    assert "--score and --label must be different columns" in err and "'outcome'" in err
    assert not out.exists()


def test_a_column_named_like_an_option_is_not_read_as_one_silently(tmp_path, capsys):
    frame = _leaky_frame().rename(columns={"group": "--quiet"})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    features = [c for c in frame.columns if c not in ("risk", "outcome")][:2]
    with pytest.raises(SystemExit):
        # "--quiet" after --features is argparse's flag: the column would go unaudited
        main(
            [
                "audit",
                str(path),
                "--score",
                "risk",
                "--label",
                "outcome",
                "--features",
                *features,
                "--quiet",
            ]
        )
    assert "columns '--quiet' of" in capsys.readouterr().err


def test_a_column_named_like_an_option_is_audited_as_features_equals_name(
    tmp_path, capsys, monkeypatch
):
    # a column "--cv": --features=--cv is the way to name it (the report's settings write it
    # so), and each other way of typing it is refused with that advice
    frame = _audit_frame().rename(columns={"age": "--cv"})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    rest = ["--n-bootstrap", "20", "--rules", "0", "--quiet", "--out", str(tmp_path / "r.html")]
    for typed, said in (
        (["--features", "--cv", "group"], "argument --features: expected at least one argument"),
        (["--features", "group", "--cv"], "argument --cv: expected one argument"),
        (["--features", "group", "--cv", "group"], "argument --cv: invalid int value"),
    ):
        with pytest.raises(SystemExit):
            main([*base, *typed, *rest])
        err = capsys.readouterr().err
        assert said in err and "If '--cv' is a column to audit" in err, typed
        assert "give it as --features=--cv" in err
    # a bad value of an option that no column is named like is the option's: no such advice
    plain = tmp_path / "plain.csv"
    _audit_frame().to_csv(plain, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(plain), *base[2:], "--features", "group", "--n-jobs", "two", *rest])
    err = capsys.readouterr().err
    assert "argument --n-jobs: invalid int value: 'two'" in err
    assert "is a column" not in err and "--features=--n-jobs" not in err
    # so for an option of one column
    with pytest.raises(SystemExit):
        main([*base, "--features", "group", "--groups", "-case", *rest])
    err = capsys.readouterr().err
    assert "argument --groups: expected one argument. If '-case' is a column" in err
    assert "give it as --groups=-case" in err
    with pytest.raises(SystemExit):
        main([*base, "--features=--cv", "group", "unused", *rest])
    err = capsys.readouterr().err
    assert "unrecognized arguments: group unused. --features=--cv gives --features that one" in err
    assert "give them all as --features=--cv --features=group --features=unused" in err
    # the column typed as an option beside the features (and the option --cv itself) is
    # refused, naming the way to give it
    with pytest.raises(SystemExit):
        main([*base, "--features", "group", "--cv", "2", *rest])
    assert "give each feature as --features=NAME (--features=group --features=--cv)" in (
        capsys.readouterr().err
    )
    # given so, the column is audited, beside the option --cv
    audits = _captured_audits(monkeypatch)
    assert main([*base, "--features=--cv", "--features=group", "--cv", "2", *rest]) == 0
    capsys.readouterr()
    assert list(audits[0].feature_names_in_) == ["--cv", "group"] and audits[0].cv == 2


def _read_typed(argv):
    """The parsed options and the command line's reading of the data, for ``argv`` as typed
    (the checks of words read as options see them)."""
    from sklearn_distill.__main__ import _parser, _read_audit_data

    parser, audit_parser = _parser("sklearn-distill")
    args = parser.parse_args(argv)
    args.prog, args.argv = parser.prog, list(argv)
    return args, _read_audit_data(args, audit_parser, lambda message: None)


def _typed_refusal(argv) -> str:
    import contextlib
    import io

    stream = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stderr(stream):
        _read_typed(argv)
    return stream.getvalue()


def test_an_option_is_read_as_itself_where_no_column_of_its_name_can_be_meant(tmp_path):
    # a file with columns named "--cv", "--quiet" and "--qui" that are not to be audited: the
    # options had been refused wherever they were typed, with no way to give them but renaming
    # the columns in the file
    frame = _audit_frame().rename(columns={"unused": "--cv"}).assign(**{"--quiet": 1.0})
    frame["--qui"] = 0.0
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    features = ["--features", "age", "group"]
    for typed in (
        ["--cv", "2", "--quiet", *features],  # before the features
        [*features, "--cv=2"],  # after "=", the value is the option's
        [*features, "--n-jobs", "1", "--cv", "2", "--quiet"],  # after another option's value
        [*features, "--categorical", "group", "--cv=2", "--quiet"],  # "--quiet" after "="
    ):
        args, data = _read_typed([*base, *typed])
        assert list(data.X.columns) == ["age", "group"], typed
        assert args.cv == (2 if "2" in " ".join(typed) else 5), typed
        assert args.quiet == ("--quiet" in typed), typed
    # right after the features a column may be meant: refused, and the command the refusal
    # gives is read as the options meant
    for typed, meant, given, cv, quiet in (
        ([*features, "--cv", "2"], "the option --cv, give it", "--cv=2", 2, False),
        ([*features, "--qui"], "the option --qui, give it", "--qui --f", 5, True),  # --quiet
        ([*features, "--cv", "2", "--quiet"], "the option --cv, give it", "--cv=2 --quiet", 2, True),
        (["--features", "age", "--quiet", "--features", "group"], "the option --quiet, give it",
         "--quiet --features age", 5, True),
        # the flag moved, --cv would follow the features in its turn
        ([*features, "--quiet", "--cv", "2"], "the options --quiet and --cv, give them",
         "--quiet --features age group --cv=2", 2, True),
    ):  # fmt: skip
        err = _typed_refusal([*base, *typed])
        assert "are named like options, and the command line reads them as options" in err
        assert "give each feature as --features=NAME (--features=age --features=group" in err
        said, command = err.strip().split(", after '=' or before --features: sklearn-distill ")
        assert said.endswith(f"If you meant {meant} where no column is meant"), said
        assert given in command, command
        args, data = _read_typed(shlex.split(command))
        assert list(data.X.columns) == ["age", "group"], command
        assert (args.cv, args.quiet) == (cv, quiet), command


def test_the_command_given_for_a_flag_keeps_the_data_file_that_followed_it(tmp_path):
    # the data file typed after the features and a flag: the flag moved before --features had
    # left the file at the end of the list of features, where it was read as one of them
    frame = _audit_frame().rename(columns={"unused": "--cv"}).assign(**{"--quiet": 1.0})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    head = ["audit", "--score", "risk", "--label", "outcome", "--features", "age", "group"]
    for typed, cv in (
        ([*head, "--quiet", str(path)], 5),
        ([*head, "--quiet", str(path), "--cv", "2"], 2),
        (["audit", "--features", "age", "group", "--quiet", str(path), "--score", "risk",
          "--label", "outcome"], 5),
    ):  # fmt: skip
        args, _ = _parser_reading(typed)
        assert args.data == str(path) and args.quiet, typed  # as the parser reads it
        err = _typed_refusal(typed)
        said, command = err.strip().split(", after '=' or before --features: sklearn-distill ")
        assert "If you meant the option --quiet" in said or "options --quiet and" in said, said
        args, data = _read_typed(shlex.split(command))
        assert args.data == str(path), command
        assert list(data.X.columns) == ["age", "group"], command
        assert (args.cv, args.quiet) == (cv, True), command


def test_an_option_after_an_abbreviated_list_of_columns_is_refused_as_after_the_list(tmp_path):
    # argparse reads "--feat" as --features, "--cat" as --categorical: an option named like a
    # column right after such a list may be that column all the same, and had been read
    # as the option silently (the abbreviation not seen as a list of columns)
    frame = _audit_frame().rename(columns={"unused": "--cv"}).assign(**{"--quiet": 1.0})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    for typed, cv, quiet in (
        (["--feat", "age", "group", "--cv", "2"], 2, False),
        (["--feat=age", "--features", "group", "--quiet"], 5, True),
        (["--features", "age", "group", "--cat", "group", "--cv", "2"], 2, False),
        (["--fea", "age", "group", "--quiet", "--cv", "2"], 2, True),
    ):  # fmt: skip
        err = _typed_refusal([*base, *typed])
        assert "are named like options, and the command line reads them as options" in err, typed
        _, command = err.strip().split(", after '=' or before --features: sklearn-distill ")
        args, data = _read_typed(shlex.split(command))
        assert list(data.X.columns) == ["age", "group"], command
        assert (args.cv, args.quiet) == (cv, quiet), command


def test_the_features_given_for_an_option_named_column_keep_the_columns_it_took(tmp_path):
    # "--features age --categorical group" with a column named "--categorical": had it been
    # meant as a column, "group" was meant as a feature too, and the --features given had
    # dropped it; a value that is no column of the file ("2" of --cv) is left out
    frame = _audit_frame().rename(columns={"unused": "--categorical"}).assign(**{"--cv": 1.0})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    for typed, meant in (
        (["--features", "age", "--categorical", "group"],
         "--features=age --features=--categorical --features=group"),
        (["--features", "age", "--categorical", "group", "--cv", "2"],
         "--features=age --features=--categorical --features=group --features=--cv"),
    ):  # fmt: skip
        err = " ".join(_typed_refusal([*base, *typed]).split())
        assert f"give each feature as --features=NAME ({meant}), or rename" in err, err
    _, data = _read_typed([*base, *shlex.split(meant)])
    assert list(data.X.columns) == ["age", "--categorical", "group", "--cv"]


def _parser_reading(argv):
    from sklearn_distill.__main__ import _parser

    return _parser("sklearn-distill")[0].parse_known_args(argv)


def test_a_column_named_like_an_option_after_the_end_of_options_marker(tmp_path, capsys):
    # "--" ends no list of columns here: the refusal gives the --features that read them
    frame = _audit_frame().rename(columns={"unused": "--cv"})
    path = tmp_path / "options.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    with pytest.raises(SystemExit):
        main([*base, "--features", "age", "group", "--", "--cv"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: -- --cv. '--' does not make the words after it columns" in err
    meant = "--features=age --features=group --features=--cv"
    assert err.strip().endswith(f"type the features as {meant}")
    _, data = _read_typed([*base, *shlex.split(meant)])
    assert list(data.X.columns) == ["age", "group", "--cv"]


def test_a_dashed_column_after_features_is_named_in_the_error(tmp_path, capsys):
    frame = _leaky_frame().rename(columns={"group": "-p"})
    path = tmp_path / "dashed.csv"
    frame.to_csv(path, index=False)
    command = ["audit", str(path), "--score", "risk", "--label", "outcome", "--features"]
    with pytest.raises(SystemExit) as exited:
        main([*command, "age", "-p"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: -p" in err and "'-p' is a column" in err
    assert "give each feature as --features=NAME (--features=age --features=-p), or rename the" in (
        err
    )
    # or a mistyped option: the error says that reading too
    assert "Otherwise it is no option of this command (--help lists them" in err
    # an unknown option elsewhere keeps argparse's own message, without the hint
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome", "--bogus"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and "column" not in err


def test_the_features_given_for_a_dashed_column_keep_the_columns_typed_after_it(tmp_path, capsys):
    # "--features age -p group": argparse leaves "-p" and "group" over; the --features given
    # for "-p" as a column had dropped "group", which the user had listed as a feature too
    frame = _audit_frame().rename(columns={"unused": "-p"})
    path = tmp_path / "dashed.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    for typed, meant in (
        (["--features", "age", "-p", "group"], "--features=age --features=-p --features=group"),
        # a known option ends the words that would have been features
        (["--features", "age", "-p", "--quiet"], "--features=age --features=-p"),
    ):
        with pytest.raises(SystemExit):
            main([*base, *typed])
        err = " ".join(capsys.readouterr().err.split())
        assert f"give each feature as --features=NAME ({meant}), or rename" in err, err
    _, data = _read_typed([*base, *shlex.split("--features=age --features=-p --features=group")])
    assert list(data.X.columns) == ["age", "-p", "group"]


def test_the_advice_to_convert_a_column_is_given_in_command_line_terms():
    import io

    from sklearn_distill.__main__ import _WarningPrinter
    from sklearn_distill._data import warn_text_categories

    frame = pd.DataFrame({"income": [f"${k * 1013:,}" for k in range(1, 301)]})
    with pytest.warns(UserWarning, match="pandas.to_numeric") as caught:
        warn_text_categories(frame)  # the library's own advice, as it reaches the printer
    printer = _WarningPrinter("outcome")
    stream = io.StringIO()
    printer(str(caught[0].message), UserWarning, "x.py", 1, file=stream)
    said = stream.getvalue()
    assert "pandas" not in said and "Pass --numeric COL to read it as numbers" in said
    assert "write the column as plain numbers in the file" in said


# ---------------------------------------------------------------------------- numbers as text
def _income_frame(n=400, seed=6):
    """Audit data whose score falls with income, written as currency (``"$94,901"``)."""
    rng = np.random.default_rng(seed)
    income = rng.integers(20, 120, size=n) * 1000 + rng.integers(0, 1000, size=n)
    age = rng.integers(18, 70, size=n)
    logit = -(income - 70000) / 20000 + rng.normal(scale=0.5, size=n)
    outcome = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": [f"${value:,}" for value in income],
            "risk": np.clip(np.round(5 + 2 * logit), 1, 10),
            "outcome": outcome,
        }
    )
    return frame, income


def test_a_currency_feature_is_audited_as_the_number_it_is(tmp_path, capsys, monkeypatch):
    # "$94,901" was a category of one level per row or so: its shape, flags and report lost
    # the order of the numbers, silently
    import sklearn_distill.report as report

    frame, income = _income_frame()
    path = tmp_path / "income.csv"
    frame.to_csv(path, index=False)
    written = path.read_bytes()
    audits = _captured_audits(monkeypatch)
    out = tmp_path / "income.html"
    args = ["--features", "age", "income", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert _run(path, out, *args, "--quiet") == 0
    err = capsys.readouterr().err
    example = frame["income"].iloc[0]
    assert f"note: column 'income' read as numbers: {example!r} is {income[0]}" in err
    assert err.count("note: column 'income'") == 1
    assert "--categorical income" in err
    assert "categorical feature" not in err  # the library's warning has nothing left to say
    assert path.read_bytes() == written  # the file is read, never rewritten
    (audit,) = audits
    assert audit.mimic_.feature_kinds_ == ["numeric", "numeric"]
    table = report.quiet_compare(audit, interactions=False)
    shape = table[(table["term"] == "income") & table["bin_low"].notna()]
    assert 3 <= len(shape) <= 256  # numeric bins, not a level per row
    middle = (shape["bin_low"] + shape["bin_high"]) / 2
    # the score falls with income: so does the mimic's shape
    assert shape["mimic"].corr(middle, method="spearman") < -0.8
    page = out.read_text(encoding="utf-8")
    assert "read as numbers from text" in page


def test_accounting_negatives_and_signs_read_as_their_numbers(tmp_path, capsys):
    from sklearn_distill.__main__ import _text_numbers

    cells = ["(1,234)", "($1,234.50)", "-1,234", "$94,901", " ( 7 ) ", "-$12", np.nan]
    column = pd.Series(cells, dtype=object)
    before = column.copy()
    np.testing.assert_array_equal(
        _text_numbers(column).to_numpy(), [-1234.0, -1234.5, -1234.0, 94901.0, -7.0, -12.0, np.nan]
    )
    pd.testing.assert_series_equal(column, before)  # not mutated
    # through the command line: a balance column of accounting negatives
    frame = _audit_frame()
    balance = np.random.default_rng(7).integers(-5000, 5000, size=len(frame)) * 1.5
    frame["balance"] = [f"(${-b:,.2f})" if b < 0 else f"${b:,.2f}" for b in balance]
    path = tmp_path / "balance.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "balance"])  # fmt: skip
    np.testing.assert_array_equal(data.X["balance"].to_numpy(), balance)
    err = capsys.readouterr().err
    assert "an accounting negative" in err and "note: column 'balance' read as numbers" in err


def test_decimal_commas_and_mixed_percentages_are_not_read_as_numbers(tmp_path, capsys):
    # "0,5" is a decimal comma (--decimal ','), not a thousands separator; 5% beside 0.05 has
    # no one scale: both stay as written, while a column of percentages is read on its scale
    frame = _audit_frame()
    rng = np.random.default_rng(8)
    frame["share"] = [f"0,{k}" for k in rng.integers(1, 10, size=len(frame))]
    rate = np.round(rng.uniform(0, 100, size=len(frame)), 1)
    frame["mixed"] = [f"{r}%" if k % 2 else f"{r / 100}" for k, r in enumerate(rate)]
    frame["rate"] = [f"{r}%" for r in rate]
    path = tmp_path / "shares.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    data = _read([*base, "--features", "age", "share", "mixed", "rate"])
    assert data.X["share"].tolist() == frame["share"].tolist()
    assert data.X["mixed"].tolist() == frame["mixed"].tolist()
    np.testing.assert_array_equal(data.X["rate"].to_numpy(), rate)  # 88.5, not 0.885
    err = capsys.readouterr().err
    assert "note: column 'share'" not in err and "note: column 'mixed'" not in err
    assert "note: column 'rate' read as numbers" in err and "printed scale" in err
    # --categorical keeps a column of numbers written as text as categories
    data = _read([*base, "--features", "age", "rate", "--categorical", "rate"])
    assert data.X["rate"].astype(str).tolist() == frame["rate"].tolist()
    assert "note: column 'rate'" not in capsys.readouterr().err


def test_cells_that_are_not_numbers_in_a_number_column_become_missing_and_are_counted(
    tmp_path, capsys
):
    frame, income = _income_frame()
    unread = [3, 50, 51]
    frame.loc[unread, "income"] = "unknown"
    frame.loc[10, "income"] = np.nan  # truly missing: an empty cell
    path = tmp_path / "unknown.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "income"])  # fmt: skip
    expected = income.astype(float)
    expected[[*unread, 10]] = np.nan
    np.testing.assert_array_equal(data.X["income"].to_numpy(), expected)
    err = " ".join(capsys.readouterr().err.split())
    assert "3 cells that are not numbers read as missing, e.g. 'unknown'" in err
    assert data.read_as_numbers["income"].endswith("e.g. 'unknown'")


def test_a_score_written_as_percentages_is_read_on_its_scale(tmp_path, capsys):
    frame = _audit_frame()
    frame["risk"] = [f"{r * 10:g}%" for r in frame["risk"]]
    path = tmp_path / "percent score.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome", *FEATURES])
    np.testing.assert_array_equal(data.score, _audit_frame()["risk"].to_numpy() * 10)
    err = capsys.readouterr().err
    assert "note: --score 'risk' read as numbers" in err and "--categorical" not in err
    # a score cell that is not a number is still refused, quoted (not read as missing)
    frame.loc[7, "risk"] = "high"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        _read(["audit", str(path), "--score", "risk", "--label", "outcome", *FEATURES])
    err = " ".join(capsys.readouterr().err.split())
    assert "--score 'risk' holds values that are not numbers: 1 of" in err and "'high'" in err


def test_amounts_written_as_text_are_no_identifiers_in_the_listing():
    # the listing called "$94,901" on every row an identifier, and the audit read it as numbers
    frame = _audit_frame()
    n = len(frame)
    frame["income"] = [f"${20000 + 137 * k:,}" for k in np.random.default_rng(9).permutation(n)]
    frame["case"] = [f"{10000 + k}" for k in range(n)]  # a code written in digits
    frame.loc[0, "case"] = "unknown"
    reasons = unsafe_columns(frame, ["income", "case"], "risk", "outcome")
    assert "income" not in reasons
    assert reasons["case"] == "a distinct value on every row (an identifier?)"


def _identifier_frame(n=300, seed=10):
    """Audit data with identifiers written with spaces, thousands commas or leading zeros,
    distinct on every row, beside an amount that is distinct on every row too."""
    frame = _audit_frame(n)
    rng = np.random.default_rng(seed)
    frame["phone"] = [f"617 555 {k:04d}" for k in rng.permutation(n)]
    frame["record"] = [f"{k:,}" for k in rng.permutation(n) + 10000]
    frame["ssn"] = [f"{k // 10000 + 100:03d} {k // 100 % 100:02d} {k:04d}" for k in range(n)]
    frame["card"] = [f"4111 1111 {k:04d} {j:04d}" for j, k in enumerate(rng.permutation(n))]
    zips = [f"{k:05d}" for k in rng.choice(np.arange(1000, 99999), size=n, replace=False)]
    frame["zip"] = [z + "-1234" if k % 40 == 0 else z for k, z in enumerate(zips)]
    frame["case"] = [f"{30000 + k}" for k in rng.permutation(n)]  # digits and one note
    frame.loc[5, "case"] = "unknown"
    frame["income"] = [f"${20000 + 137 * k:,}" for k in rng.permutation(n)]
    return frame


IDENTIFIERS = ["phone", "record", "ssn", "card", "zip", "case"]


def test_identifiers_written_with_spaces_or_commas_are_flagged_in_the_audit(tmp_path, capsys):
    # read as numbers first, they passed the identifier check: "10,295" as 10295.0, a float
    frame = _identifier_frame()
    path = tmp_path / "identifiers.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", *IDENTIFIERS, "income"])  # fmt: skip
    for name in IDENTIFIERS:
        assert data.unsafe[name] == "a distinct value on every row (an identifier?)", name
    assert "income" not in data.unsafe  # an amount differs on every row
    err = capsys.readouterr().err
    assert "warning: --features includes columns that look unsafe" in err
    assert "record: a distinct value on every row" in err


def test_identifiers_written_with_spaces_or_commas_are_flagged_in_the_listing(tmp_path, capsys):
    # a comma or a space alone counted as a measurement, which may differ on every row
    frame = _identifier_frame()
    path = tmp_path / "identifiers.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        main(["audit", str(path), "--score", "risk", "--label", "outcome"], prog="sklearn-distill")
    lines = capsys.readouterr().err.splitlines()
    for name in IDENTIFIERS:
        assert any(
            line.strip() == f"{name}: a distinct value on every row (an identifier?)"
            for line in lines
        ), name
    assert not any(line.strip().startswith("income:") for line in lines)
    reasons = unsafe_columns(frame, [*IDENTIFIERS, "income"], "risk", "outcome")
    assert sorted(reasons) == sorted(IDENTIFIERS)


def test_codes_written_with_spaces_parentheses_or_leading_zeros_are_not_read(tmp_path, capsys):
    # "2 7" read 27, an answer code "(3)" read -3, and "02139" read 2139 (ZIP+4 as missing)
    from sklearn_distill.__main__ import _text_numbers

    for cells in (["2 7", "12 5", "3"], ["(3)", "(1)", "(5)"], ["02139", "10001", "0"]):
        assert _text_numbers(pd.Series(cells, dtype=object)) is None, cells
    # what reads: thousands grouped by spaces, "0.5" and "0", an accounting negative
    cells = ["12 345", "1\u00a0234\u00a0567", "5\u202f000", "0.5", "0", "(1 234)", " $ 7 "]
    np.testing.assert_array_equal(
        _text_numbers(pd.Series(cells, dtype=object)).to_numpy(),
        [12345.0, 1234567.0, 5000.0, 0.5, 0.0, -1234.0, 7.0],
    )
    frame = _audit_frame()
    rng = np.random.default_rng(11)
    n = len(frame)
    frame["range"] = [f"{a} {a + 5}" for a in rng.integers(1, 50, size=n)]
    frame["answer"] = [f"({k})" for k in rng.integers(1, 6, size=n)]
    frame["zip"] = [f"{k:05d}" for k in rng.integers(1000, 99999, size=n)]
    frame.loc[::40, "zip"] = frame.loc[::40, "zip"] + "-1234"
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "range", "answer", "zip"])  # fmt: skip
    for name in ("range", "answer", "zip"):
        assert data.X[name].tolist() == frame[name].tolist(), name
    assert "read as numbers" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- a probability score
def _probability_frame(n=300, seed=0):
    """Audit data whose score is a probability of the outcome (four decimals, in [0, 1])."""
    frame = _audit_frame(n, seed)
    noise = np.random.default_rng(seed + 1).normal(scale=0.5, size=n)
    logit = -(frame["age"] - 40) / 10 + 0.8 * (frame["group"] == "a") + noise
    frame["risk"] = np.round(1 / (1 + np.exp(-logit)), 4)
    return frame


FAST = ["--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]


def test_response_predict_proba_reads_a_probability_as_its_log_odds(tmp_path, capsys, monkeypatch):
    from sklearn_distill import CompareAudit

    frame = _probability_frame()
    path = tmp_path / "probability.csv"
    frame.to_csv(path, index=False)
    audits = _captured_audits(monkeypatch)
    out = tmp_path / "proba.html"
    args = [*FEATURES, *FAST, "--calibration", "none", "--response", "predict_proba"]
    assert _run(path, out, *args) == 0
    captured = capsys.readouterr()
    printed = " ".join(captured.out.split())
    (audit,) = audits
    assert audit.response == "predict_proba" and audit.mimic_.response_ == "predict_proba"
    # the same audit as the Python API's on the same rows: the mimic's target is the log-odds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = CompareAudit(
            response="predict_proba", calibration=None, cv=2, random_state=0
        ).fit(frame[["age", "group"]], frame["outcome"], teacher_scores=frame["risk"])
    np.testing.assert_allclose(audit.mimic_residuals_, expected.mimic_residuals_)
    assert audit.fidelity_["r2"] == pytest.approx(expected.fidelity_["r2"])
    p = frame["risk"].to_numpy()
    logit = np.log(p / (1 - p))
    fitted = logit - audit.mimic_residuals_
    assert np.corrcoef(fitted, logit)[0, 1] > 0.9  # not the probability's own scale
    assert "all lie in [0, 1]" not in captured.err  # nothing read on the wrong scale
    assert (
        "the score was read as the probability of outcome = 1 and mimicked as its log-odds "
        "(--response predict_proba, --calibration none)" in printed
    )
    page = out.read_text(encoding="utf-8")
    assert re.search(r"<dt>score read as</dt><dd>a probability of the outcome event", page)
    assert "on its own scale" not in page


def test_calibration_none_on_a_probability_asks_how_to_read_it(tmp_path, capsys):
    path = tmp_path / "probability.csv"
    _probability_frame().to_csv(path, index=False)
    out = tmp_path / "none.html"
    with pytest.raises(SystemExit) as exit_info:
        _run(path, out, *FEATURES, *FAST, "--calibration", "none")
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--score 'risk' lies in [0, 1]" in err
    assert "--response predict_proba" in err and "--response predict to mimic it as given" in err
    assert not out.exists()
    # a score on another scale is no probability
    with pytest.raises(SystemExit):
        _run(_audit_frame_path(tmp_path), out, *FEATURES, *FAST, "--response", "predict_proba")
    err = " ".join(capsys.readouterr().err.split())
    assert "--response predict_proba reads --score 'risk' as a probability" in err
    assert "the score runs from 1 to 10" in err


def _audit_frame_path(tmp_path):
    path = tmp_path / "risk.csv"
    _audit_frame().to_csv(path, index=False)
    return path


def test_a_probability_mimicked_as_given_says_so_in_option_terms_and_findings(tmp_path, capsys):
    path = tmp_path / "probability.csv"
    _probability_frame().to_csv(path, index=False)
    out = tmp_path / "given.html"
    args = [*FEATURES, *FAST, "--calibration", "none", "--response", "predict"]
    assert _run(path, out, *args) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    # the library's advice, in the command line's spelling
    assert "all lie in [0, 1]" in err
    assert "pass --response predict_proba (read as log-odds)" in err
    assert "--calibration isotonic, spline or sigmoid" in err
    assert "response='" not in err and "calibration='" not in err
    # the printed findings: R^2 of the score's own scale, not of log-odds, and why (wrapped,
    # hyphens included)
    printed = " ".join(captured.out.split()).replace("log- odds", "log-odds")
    assert "of the score on its own scale, not of log-odds" in printed
    assert "variance of the score's log-odds" not in printed
    assert "The score lies in [0, 1], as a probability does, but was read on its own" in printed
    assert "--response predict_proba" in printed
    page = " ".join(out.read_text(encoding="utf-8").split())
    assert "of the score on its own scale, not of log-odds" in page
    assert "but was read on its own scale" in page
    assert re.search(r"<dt>score read as</dt><dd>a plain score, mimicked as given", page)
    assert "--response predict_proba" in _page_text(page)


def test_decision_function_on_a_probability_with_calibration_none_is_refused(tmp_path, capsys):
    # for a one-column score decision_function is as given, like predict: a probability read
    # so was mimicked as log-odds, silently (a false flag, "R^2 0.999 ... faithful")
    path = tmp_path / "probability.csv"
    _probability_frame().to_csv(path, index=False)
    out = tmp_path / "margin.html"
    args = [*FEATURES, *FAST, "--calibration", "none", "--response", "decision_function"]
    with pytest.raises(SystemExit) as exit_info:
        _run(path, out, *args)
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--score 'risk' lies in [0, 1]" in err
    assert "--response decision_function with --calibration none reads the score as a margin" in err
    assert "--response predict_proba" in err and "--response predict to mimic it as given" in err
    assert not out.exists()


def test_a_score_plainly_not_log_odds_is_refused_with_calibration_none(tmp_path, capsys):
    # a decile (1 to 10) and a points scale are no log-odds: --calibration none took them as
    # log-odds and flagged values in decile units, with no caveat
    decile = _audit_frame_path(tmp_path)
    points = tmp_path / "points.csv"
    frame = _audit_frame()
    frame["risk"] = 300 + 55 * frame["risk"] + np.random.default_rng(3).uniform(0, 5, len(frame))
    frame.to_csv(points, index=False)
    out = tmp_path / "none.html"
    for path, said in (
        (decile, "take only 10 distinct whole-number values (1 to 10)"),
        (points, "a tenth of them beyond +-20"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            _run(path, out, *FEATURES, *FAST, "--calibration", "none")
        assert exit_info.value.code == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "--score 'risk' looks unlike log-odds" in err and said in err
        assert "Leave out --calibration" in err and "--response decision_function" in err
        assert "--response predict to mimic it as given" in err
        assert not out.exists()
    # --response decision_function says it is log-odds all the same (a points score of
    # log-odds): taken at its word, with no own-scale wording
    args = [*FEATURES, *FAST, "--calibration", "none", "--response", "decision_function"]
    assert _run(points, out, *args) == 0
    said = capsys.readouterr()
    assert "looks unlike log-odds" not in said.err and "not of log-odds" not in said.out
    out.unlink()
    # --response predict mimics it as given: the findings say the score's own scale
    args = [*FEATURES, *FAST, "--calibration", "none", "--response", "predict"]
    assert _run(decile, out, *args) == 0
    captured = capsys.readouterr()
    printed = " ".join(captured.out.split()).replace("log- odds", "log-odds")
    assert "take only 10 distinct whole-number values" in " ".join(captured.err.split())
    assert "of the score on its own scale, not of log-odds" in printed
    assert "--response predict), on its own scale" in printed
    if "Flagged values" in printed:  # the flagged table names both scales
        assert "(the mimic on the score's own scale, the outcome in log-odds)" in printed
    page = " ".join(out.read_text(encoding="utf-8").split())
    assert "of the score on its own scale, not of log-odds" in page
    assert re.search(r"RMSE [\d.]+ on the score(&#x27;|&#39;|')s own scale", page)
    assert "as a grade or a decile does" in page


def test_an_uncalibrated_falling_score_is_told_to_pass_event(tmp_path, capsys):
    # the library's "pass y == 0 as y (the score's event as True)", in option terms; and the
    # R^2 of a score mimicked as given is of its own scale
    frame = _status_frame()
    noise = np.random.default_rng(2).uniform(-0.4, 0.4, len(frame))
    frame["risk"] = (frame["risk"] + noise).round(3)  # continuous: may be log-odds
    path = tmp_path / "status.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "falling.html"
    assert _run(path, out, *FEATURES, *FAST, "--calibration", "none") == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "score falls as P(outcome = 'repaid') rises" in err
    assert "the log-odds of outcome = 'repaid' (the outcome event)" in err
    assert "If it scores outcome = 'defaulted'" in err and "pass --event defaulted," in err
    assert "y ==" not in err and "classes_" not in err
    printed = " ".join(captured.out.split()).replace("log- odds", "log-odds")
    assert "of the score on its own scale" in printed
    assert "not of log-odds" not in printed


def test_calibration_and_resample_warnings_are_printed_in_option_terms():
    import io

    from sklearn_distill import CompareAudit
    from sklearn_distill.__main__ import _WarningPrinter

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(size=300), "group": rng.integers(3, size=300)})
    y = (X["age"] + rng.normal(size=300) > 0).astype(int)
    # a score that nearly separates the outcome: isotonic steps of rate 0 or 1
    score = 3 * X["age"] + 0.1 * rng.normal(size=300) + 5 * y
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit = CompareAudit(cv=2, random_state=0).fit(X, y, teacher_scores=score)
        audit.missing_feature_test(n_bootstrap=20)
    stream = io.StringIO()
    printer = _WarningPrinter("outcome")
    for caught_warning in caught:
        printer(str(caught_warning.message), UserWarning, "x.py", 1, file=stream)
    said = " ".join(stream.getvalue().split())
    assert "use --calibration spline (a smooth monotone map; --calibration sigmoid assumes" in said
    assert "--n-bootstrap 20 resamples cannot give a p-value below" in said
    assert "n_bootstrap" not in said and "'sigmoid'" not in said
    # a score that falls only weakly with the outcome: read as rising, and how to say otherwise
    # on the command line (the file's column, not a Python step)
    falling = rng.normal(size=300) - 0.12 * y
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CompareAudit(cv=2, random_state=0).fit(X, y, teacher_scores=falling)
    (weak,) = [str(w.message) for w in caught if "only weakly" in str(w.message)]
    stream = io.StringIO()
    printer(weak, UserWarning, "x.py", 1, file=stream)
    said = " ".join(stream.getvalue().split())
    assert "write its negation in the file and pass that column as --score" in said
    assert "negate it before the audit" not in said


def test_the_library_advice_on_a_probability_score_is_printed_in_option_terms():
    import io

    from sklearn_distill import CompareAudit
    from sklearn_distill.__main__ import _WarningPrinter
    from sklearn_distill.report import audit_findings_text

    frame = _probability_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit = CompareAudit(calibration=None, cv=2, random_state=0).fit(
            frame[["age", "group"]], frame["outcome"], teacher_scores=frame["risk"]
        )
    (message,) = [str(w.message) for w in caught if "all lie in [0, 1]" in str(w.message)]
    assert "response='predict_proba'" in message  # the Python spelling, for the API's users
    stream = io.StringIO()
    _WarningPrinter("outcome")(message, UserWarning, "x.py", 1, file=stream)
    said = stream.getvalue()
    assert "pass --response predict_proba" in said
    assert "--calibration isotonic, spline or sigmoid" in said
    assert "response='" not in said and "calibration='" not in said
    # the findings of an audit fitted from Python say it too, with the R^2's scale
    audit.missing_feature_test(n_bootstrap=40)
    text = " ".join(audit_findings_text(audit).split()).replace("log- odds", "log-odds")
    assert "of the score on its own scale, not of log-odds" in text
    assert "but was read on its own scale" in text and "score's log-odds" not in text


def test_negative_percentages_and_signed_amounts_are_measurements():
    # "(5%)" is a negative percentage (a percent sign makes a column of amounts), and a signed
    # number written with thousands commas differs on every row as a measurement does: neither
    # is an identifier; record numbers written with commas still are
    from sklearn_distill.__main__ import _text_numbers, unsafe_columns

    assert _text_numbers(pd.Series(["(5%)", "(10%)", "3%"])).tolist() == [-5.0, -10.0, 3.0]
    assert _text_numbers(pd.Series(["(3)", "4", "5"])) is None  # answer codes
    rng = np.random.default_rng(0)
    n = 300
    balances = rng.permutation(np.arange(-150_000, 150_000, 1000))[:n]
    frame = pd.DataFrame(
        {
            "risk": rng.random(n),
            "outcome": rng.integers(0, 2, n),
            "balance": [f"{v:,}" for v in balances],
            "pct": [f"({k}%)" if k % 3 == 0 else f"{k}%" for k in range(n)],
            "record": [f"{10_000 + k:,}" for k in range(n)],
        }
    )
    reasons = unsafe_columns(frame, ["balance", "pct", "record"], "risk", "outcome")
    assert set(reasons) == {"record"}
    assert "identifier" in reasons["record"]


def test_decimal_comma_files_read_percentages_and_amounts_written_as_text(tmp_path, capsys):
    # with --decimal ',' the text reader was skipped: "14,5 %" and "€1.769,70" stayed
    # categories, silently, while the library's warning advised --decimal ','
    frame = _audit_frame()
    rng = np.random.default_rng(12)
    rate = np.round(rng.uniform(0, 30, size=len(frame)), 1)
    amount = np.round(rng.uniform(0, 20000, size=len(frame)), 2)

    def german(value, digits):
        return f"{value:,.{digits}f}".translate(str.maketrans(",.", ".,"))

    lines = ["age;Zins;Betrag €;risk;outcome"] + [
        f"{a};{german(r, 1)} %;€{german(m, 2)};{str(s).replace('.', ',')};{o}"
        for a, r, m, s, o in zip(frame["age"], rate, amount, frame["risk"], frame["outcome"])
    ]
    path = tmp_path / "zins.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome", "--sep", ";",
                  "--decimal", ",", "--features", "age", "Zins", "Betrag €"])  # fmt: skip
    np.testing.assert_allclose(data.X["Zins"].to_numpy(), rate)
    np.testing.assert_allclose(data.X["Betrag €"].to_numpy(), amount)
    err = " ".join(capsys.readouterr().err.split())
    assert f"note: column 'Zins' read as numbers: '{german(rate[0], 1)} %' is {rate[0]:g}" in err
    assert "note: column 'Betrag €' read as numbers" in err
    assert "categorical feature" not in err
    assert "Betrag €" not in data.unsafe  # an amount, not an identifier
    out = tmp_path / "zins.html"
    status = _run(path, out, "--sep", ";", "--decimal", ",", "--features", "age", "Zins",
                  "Betrag €", "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet")  # fmt: skip
    assert status == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: column 'Zins' read as numbers" in err and "categorical feature" not in err
    # "0.5" beside "1,5" under --decimal ',' has no one reading: left as written
    from sklearn_distill.__main__ import _text_numbers

    assert _text_numbers(pd.Series(["0.5", "1,5"]), decimal=",") is None


def test_accounting_zeros_read_as_zero_and_nearly_numbers_are_named(tmp_path, capsys):
    # "$ -" (a spreadsheet's zero) failed the 95% rule: the money column stayed a category
    from sklearn_distill.__main__ import _text_numbers

    cells = ["$ -", "$1,234.50", " - ", "$-", "(12)"]
    np.testing.assert_array_equal(
        _text_numbers(pd.Series(cells)).to_numpy(), [0.0, 1234.5, 0.0, 0.0, -12.0]
    )
    assert _text_numbers(pd.Series(["-", "3", "4"])) is None  # no currency: a dash is no zero
    frame, income = _income_frame()
    zeros = np.arange(0, len(frame), 8)
    frame.loc[zeros, "income"] = "$ -"
    frame.loc[zeros[::2], "income"] = "-"
    frame["debt"] = frame["income"]
    unread = np.arange(1, len(frame), 3)
    frame.loc[unread, "debt"] = "see file"
    path = tmp_path / "zeros.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "income", "debt"])  # fmt: skip
    expected = income.astype(float)
    expected[zeros] = 0
    np.testing.assert_array_equal(data.X["income"].to_numpy(), expected)
    err = " ".join(capsys.readouterr().err.split())
    assert f"{len(zeros)} cells of a dash alone, e.g. '-', read as 0" in err
    assert "accounting zero" in err
    # a column two thirds numbers is left as text, and named
    assert data.X["debt"].tolist() == frame["debt"].tolist()
    share = 1 - len(unread) / len(frame)
    assert f"note: column 'debt' is left as text, categories: {share:.0%} of its cells" in err
    assert "e.g. 'see file'" in err and "'--na-values=see file'" in err


def test_leading_zero_codes_that_pandas_reads_as_numbers_stay_codes(tmp_path, capsys):
    # pandas read "02139" as 2139, silently, and the audit read ZIP codes as a number
    frame = _audit_frame()
    rng = np.random.default_rng(13)
    frame["zip"] = [f"{k:05d}" for k in rng.choice([501, 2139, 2140, 60601, 94105], len(frame))]
    frame["amount"] = np.round(rng.uniform(0, 1, size=len(frame)), 3)  # "0.5": no code
    path = tmp_path / "zip.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome"]
    data = _read([*base, "--features", "age", "zip", "amount"])
    assert data.X["zip"].astype(str).tolist() == frame["zip"].tolist()
    assert isinstance(data.X["zip"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_float_dtype(data.X["amount"])
    err = " ".join(capsys.readouterr().err.split())
    assert "note: column 'zip' holds numbers with a leading zero, e.g. " in err
    assert "--categorical zip" in err and "note: column 'amount'" not in err
    # --categorical reads it as codes without the note
    data = _read([*base, "--features", "age", "zip", "--categorical", "zip"])
    assert data.X["zip"].astype(str).tolist() == frame["zip"].tolist()
    assert "leading zero" not in capsys.readouterr().err


def test_unicode_and_trailing_minus_signs_read_as_minus(tmp_path, capsys):
    from sklearn_distill.__main__ import _text_numbers

    cells = ["\u22125.2", "\u2013$7", "5.2-", "$1,234.50-", "\u2012 3", "8.5"]
    np.testing.assert_array_equal(
        _text_numbers(pd.Series(cells)).to_numpy(), [-5.2, -7.0, -5.2, -1234.5, -3.0, 8.5]
    )
    # a trailing minus in a column of codes is no negative
    assert _text_numbers(pd.Series(["3-", "4", "5"])) is None
    frame = _audit_frame()
    change = np.round(np.random.default_rng(14).uniform(-50, 50, size=len(frame)), 1)
    frame["change"] = [
        (f"\u2212{-c}" if k % 2 else f"{-c}-") if c < 0 else f"{c}" for k, c in enumerate(change)
    ]
    path = tmp_path / "minus.csv"
    frame.to_csv(path, index=False, encoding="utf-8")
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "change"])  # fmt: skip
    np.testing.assert_array_equal(data.X["change"].to_numpy(), change)
    assert "note: column 'change' read as numbers" in capsys.readouterr().err
    assert "change" not in data.unsafe  # signed amounts are measurements


def test_zero_padded_measurements_with_a_fraction_stay_numbers(tmp_path, capsys):
    # codes have no fraction: "000949.51" (a fixed-width export) is a number, "02139" a code
    from sklearn_distill.__main__ import _text_numbers

    assert _text_numbers(pd.Series(["$000949.51", "$001200.00", "$000017.25"])).tolist() == [
        949.51,
        1200.0,
        17.25,
    ]
    assert _text_numbers(pd.Series(["$02139", "$10001", "$94105"])) is None
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "risk": rng.random(n) * 4 - 2,
            "outcome": rng.integers(0, 2, n),
            "padded": [f"{v:09.2f}" for v in rng.random(n) * 2000],
            "zip": rng.choice(["02139", "00501", "10001"], n),
        }
    )
    path = tmp_path / "padded.csv"
    frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    assert read["padded"].dtype.kind == "f"  # pandas reads both as numbers
    args = ["--features", "padded", "zip", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert _run(path, tmp_path / "padded.html", *args, "--quiet") == 0
    err = capsys.readouterr().err
    assert "column 'zip' holds numbers with a leading zero" in err
    assert "column 'padded'" not in err


def _hours_frame(seed=15):
    """Audit data with the hour of the day written zero-padded, "00" to "23"."""
    frame = _audit_frame()
    hours = np.random.default_rng(seed).integers(0, 24, size=len(frame))
    frame["hour"] = [f"{h:02d}" for h in hours]
    return frame, hours


def test_numeric_option_reads_zero_padded_hours_as_numbers(tmp_path, capsys, monkeypatch):
    # "07" made the hour codes, categories without order, and no option said it is a number
    frame, hours = _hours_frame()
    path = tmp_path / "hours.csv"
    frame.to_csv(path, index=False)
    audits = _captured_audits(monkeypatch)
    args = ["--features", "age", "hour", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert _run(path, tmp_path / "codes.html", *args, "--quiet") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: column 'hour' holds numbers with a leading zero" in err
    assert "--numeric hour to read them as numbers" in err and "--categorical hour" in err
    out = tmp_path / "hours.html"
    assert _run(path, out, *args, "--numeric", "hour", "--quiet") == 0
    err = capsys.readouterr().err
    assert "leading zero" not in err and "note: column 'hour'" not in err
    codes, numbers = audits
    assert codes.mimic_.feature_kinds_ == ["numeric", "categorical"]
    assert numbers.mimic_.feature_kinds_ == ["numeric", "numeric"]
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "hour", "--numeric", "hour"])  # fmt: skip
    np.testing.assert_array_equal(data.X["hour"].to_numpy(), hours)  # "07" is 7
    page = _page_text(out.read_text(encoding="utf-8"))
    assert "read as numbers (--numeric)" in page


def test_numeric_option_counts_cells_that_are_not_numbers(tmp_path, capsys):
    frame, hours = _hours_frame()
    frame["hour"] = frame["hour"].astype(object)
    frame.loc[[5, 9], "hour"] = "late"  # not a number: missing, never silently
    frame.loc[7, "hour"] = "$1,207"  # read by the text reader's rules
    path = tmp_path / "hours.csv"
    frame.to_csv(path, index=False)
    data = _read(["audit", str(path), "--score", "risk", "--label", "outcome",
                  "--features", "age", "hour", "--numeric", "hour"])  # fmt: skip
    expected = hours.astype(float)
    expected[[5, 9]] = np.nan
    expected[7] = 1207
    np.testing.assert_array_equal(data.X["hour"].to_numpy(), expected)
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "note: column 'hour' read as numbers (--numeric): 2 of its 300 cells are not numbers, "
        "read as missing, e.g. 'late'"
    ) in err


@pytest.mark.parametrize(
    "reading, shown",
    # 149 of 300 is 49.67%, which no digits would have printed as 50%: as many as it takes
    [(100, "33%"), (149, "49.7%")],
)
def test_numeric_option_refuses_a_column_that_mostly_does_not_read(
    tmp_path, capsys, reading, shown
):
    frame, _ = _hours_frame()
    assert len(frame) == 300
    frame["hour"] = np.where(np.arange(len(frame)) < reading, frame["hour"], "evening")
    path = tmp_path / "hours.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        _read(["audit", str(path), "--score", "risk", "--label", "outcome",
               "--features", "age", "hour", "--numeric", "hour"])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    refused = (
        f"--numeric 'hour': fewer than half of its cells read as numbers ({shown}); "
        f"{300 - reading} do not, e.g. 'evening'"
    )
    assert refused in err


def test_numeric_option_is_checked_like_categorical(tmp_path, capsys):
    frame, _ = _hours_frame()
    path = tmp_path / "hours.csv"
    frame.to_csv(path, index=False)
    base = ["audit", str(path), "--score", "risk", "--label", "outcome", "--features", "age"]
    for extra, message in (
        (
            ["hour", "--numeric", "hour", "--categorical", "hour"],
            "--numeric and --categorical both name 'hour'",
        ),
        (["--numeric", "hour"], "--numeric must name columns of --features; got 'hour'"),
        (["hour", "--numeric", "hours"], "did you mean 'hour'"),
        (["hour", "--numeric", "risk"], "not the score, the label or the groups; got 'risk'"),
    ):
        with pytest.raises(SystemExit):
            _read([*base, *extra])
        assert message in " ".join(capsys.readouterr().err.split())


def test_codes_with_a_leading_zero_and_a_stray_cell_are_audited_as_categories(
    tmp_path, capsys, monkeypatch
):
    # hours written "07" with one cell of text: kept as codes, as the note says, and given to
    # the models as categories (the library read them as numbers at fit and stopped on the
    # stray cell: "X column 'code' must hold numbers, as it did at fit; got 'x'")
    rng = np.random.default_rng(0)
    n = 300
    codes = [f"{k:02d}" for k in rng.integers(0, 24, n)]
    codes[5] = "x"
    p = rng.random(n)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 80, n), "code": codes, "risk": p, "y": (rng.random(n) < p) * 1}
    )
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    audits = _captured_audits(monkeypatch)
    args = ["--features", "age", "code", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"]
    assert main(["audit", str(path), "--score", "risk", "--label", "y", *args, "--quiet",
                 "--out", str(tmp_path / "codes.html")]) == 0  # fmt: skip
    assert "column 'code' holds numbers with a leading zero" in capsys.readouterr().err
    (audit,) = audits
    assert audit.mimic_.feature_kinds_ == ["numeric", "categorical"]


def test_the_library_names_of_the_score_are_printed_as_the_score_option():
    import io
    from types import SimpleNamespace

    from sklearn_distill import CompareAudit
    from sklearn_distill.__main__ import _error_in_option_terms, _WarningPrinter

    rng = np.random.default_rng(0)
    frame = _audit_frame()
    noise = pd.Series(rng.normal(size=len(frame)))  # a score the features cannot explain
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CompareAudit(cv=2, random_state=0).fit(
            frame[["age", "group"]], frame["outcome"], teacher_scores=noise
        )
    (message,) = [str(w.message) for w in caught if "reproduces almost none" in str(w.message)]
    assert "teacher_scores are in X's row order" in message  # the Python user's advice
    stream = io.StringIO()
    _WarningPrinter("outcome", "risk")(message, UserWarning, "x.py", 1, file=stream)
    said = stream.getvalue()
    assert "teacher_scores" not in said and "row order" not in said
    assert "Check that --score 'risk' is the black box's score of these rows" in said
    # errors too: the library's argument name becomes the option and its column
    args = SimpleNamespace(score="risk", groups=None, label="outcome")
    error = "teacher_scores must be the black box's score, not the outcome"
    assert _error_in_option_terms(args, None, error).startswith("--score 'risk' must be")


def test_options_of_several_columns_given_twice_keep_every_column(
    csv_path, tmp_path, capsys, monkeypatch
):
    # `--features age --features group` audits both (argparse kept the last list alone: the
    # audit ran on group only, silently); so do --categorical and --numeric
    from sklearn_distill.audit import CompareAudit

    seen = []

    def fit(self, X, *args, **kwargs):
        seen.append(X)
        raise ValueError("stop")

    monkeypatch.setattr(CompareAudit, "fit", fit)
    argv = ["--features", "age", "--features", "group", "unused", "--categorical", "age"]
    argv += ["--categorical", "group", "--quiet"]
    with pytest.raises(SystemExit):
        _run(csv_path, tmp_path / "r.html", *argv)
    capsys.readouterr()
    (X,) = seen
    assert list(X.columns) == ["age", "group", "unused"]
    assert isinstance(X["age"].dtype, pd.CategoricalDtype)  # the first --categorical counts
    assert isinstance(X["group"].dtype, pd.CategoricalDtype)
    assert pd.api.types.is_float_dtype(X["unused"].dtype)


def test_an_infinite_feature_cell_is_refused_with_its_line_before_any_work(tmp_path, capsys):
    frame = _audit_frame().astype({"age": float})
    frame.loc[[4, 9], "age"] = [np.inf, -np.inf]
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if text.split(",")[0] == "inf")
    out = tmp_path / "r.html"
    with pytest.raises(SystemExit) as exit_info:
        _run(path, out, *FEATURES)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    message = err.strip().splitlines()[-1]
    assert message.endswith(
        f"--features 'age' holds infinite values: 2 of {len(frame)} rows, e.g. inf in data row "
        f"5 (line {line} of {str(path)!r}). Leave a missing value's cell empty, or write the "
        "number it stands for."
    )
    assert "rows; features:" not in err and not out.exists()  # refused before the fit


def test_too_many_folds_for_the_rows_are_said_in_option_terms(csv_path, tmp_path, capsys):
    rows = len(_audit_frame())
    folds = rows // 2 + 1  # 2 rows per fold are needed
    with pytest.raises(SystemExit) as exit_info:
        _run(csv_path, tmp_path / "r.html", *FEATURES, "--cv", str(folds), "--quiet")
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.endswith(
        f"--cv {folds} folds need at least {2 * folds} rows to audit; got {rows}."
    )


def test_a_feature_with_no_value_is_warned_of_in_option_terms(tmp_path, capsys, monkeypatch):
    from sklearn_distill.audit import CompareAudit

    real_fit = CompareAudit.fit

    def fit(self, *args, **kwargs):
        real_fit(self, *args, **kwargs)
        raise ValueError("stop")  # the fit's warnings are what is checked

    monkeypatch.setattr(CompareAudit, "fit", fit)
    frame = _audit_frame()
    frame["empty"] = np.nan
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        _run(path, tmp_path / "r.html", *FEATURES, "empty", "--cv", "2", "--quiet")
    err = capsys.readouterr().err
    assert (
        "warning: --features ['empty'] have no value on any row: they carry nothing to model; "
        "leave them out of --features." in err
    )
    assert "X columns" not in err


def test_what_fit_warned_of_the_data_is_reported_with_the_command_lines_remedies(tmp_path, capsys):
    # each data caution a CSV file can give: the report's "Data:" findings name the options or
    # the file as the remedy, as the printed warnings do, not the Python API's dtype or pandas
    rng = np.random.default_rng(3)
    frame = _audit_frame()
    n = len(frame)
    frame["name"] = [f"n{k}" for k in rng.integers(0, 250, n)]  # nearly one level per row
    frame["rate"] = [f"{k},{k % 10}%" for k in rng.integers(0, 200, n)]  # decimal commas
    frame["code"] = [f"{k}_000" for k in rng.integers(1, 9, n)]  # Python reads as numbers
    frame["sex"] = rng.choice(["M", "M ", "F"], n)  # values that read alike
    path, out = tmp_path / "data.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    columns = ["age", "name", "rate", "code", "sex"]
    args = ["--features", *columns, "--cv", "2", "--n-bootstrap", "20", "--quiet"]
    assert _run(path, out, *args, "--rules", "0") == 0
    err = " ".join(capsys.readouterr().err.split())
    page = out.read_text(encoding="utf-8")
    data = [
        " ".join(_page_text(item).split())
        for item in re.findall(r"<li>Data: (.*?)</li>", page, re.S)
    ]
    assert len(data) == 4, data
    remedies = {
        "'name'": "pass --numeric COL to read them as numbers; if it is an identifier (a name, "
        "a record number), leave it out of --features.",
        "'rate'": "Pass --numeric COL to read it as numbers",
        "'code'": "Pass --categorical COL to read a column's values as labels.",
        "'sex'": "Write them alike in the file if they are the same category.",
    }
    for column, remedy in remedies.items():
        (said,) = [line for line in data if line.startswith(f"Feature {column} ")]
        assert remedy in said and remedy in err
    python = ("pandas", "dtype", "X[col]", "before fitting", "drop it")
    assert not [word for word in python if word in " ".join(data) or word in err]


def test_the_calibration_caution_in_the_report_names_the_option(tmp_path, capsys):
    # a continuous score through isotonic steps: fit warns that its extreme steps are pure and
    # advises a spline map; the command line's report says it as the printed warning does,
    # with the option, not the Python API's calibration='spline'
    rng = np.random.default_rng(5)
    n = 1500
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    logit = 1.5 * frame["a"] - frame["b"]
    frame["risk"] = logit
    frame["outcome"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    path, out = tmp_path / "scores.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    args = ["--features", "a", "b", "--calibration", "isotonic", *FAST]
    assert _run(path, out, *args) == 0
    err = " ".join(capsys.readouterr().err.split())
    page = " ".join(_page_text(out.read_text("utf-8")).split())
    assert "isotonic calibration puts" in err and "--calibration spline" in err
    (said,) = re.findall(
        r"Calibration: The isotonic calibration puts .*?linear in log-odds\)\.", page
    )
    assert "--calibration spline" in said and "calibration='spline'" not in said


def test_the_untested_finding_names_the_command_lines_options(csv_path, tmp_path, capsys):
    # age's 51 values hold a few rows each: the report and the printed findings say they were
    # not tested, with the remedy a command-line user can type (--max-bins, --min-weight), not
    # the Python API's student=/outcome= models or min_weight=
    out = tmp_path / "r.html"
    assert _run(csv_path, out, *FEATURES, *FAST) == 0
    printed = " ".join(capsys.readouterr().out.split())
    page = " ".join(_page_text(out.read_text("utf-8")).split())
    remedy = (
        "Run the audit again with a smaller --max-bins N (fewer bins per continuous feature, "
        "so more rows in each) or a lower --min-weight W."
    )
    for text in (page, printed):
        (said,) = re.findall(r"Not tested \(.*?\): age: .*? --min-weight W\.", text)
        assert "fewer than --min-weight 10 rows" in said and said.endswith(remedy)
        python = ("student=", "outcome=", "max_bins", "min_weight")
        assert not [word for word in python if word in said]


def test_probabilities_at_0_or_1_are_reported_with_the_calibration_option(tmp_path, capsys):
    # a probability score of many 0s and 1s mimicked uncalibrated: the printed warning and the
    # report speak of the black box and the mimic (the command line has no student) and name
    # --calibration isotonic as the remedy
    frame = _audit_frame()
    age = frame["age"].to_numpy(float)
    frame["risk"] = np.clip((age - 30) / 20, 0, 1)  # a third of the rows at 0 or 1 each
    share = np.mean(np.isin(frame["risk"], (0.0, 1.0)))
    assert share > 0.05
    path, out = tmp_path / "p.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    args = [*FEATURES, "--calibration", "none", "--response", "predict_proba", *FAST]
    assert _run(path, out, *args) == 0
    err = " ".join(capsys.readouterr().err.split())
    page = " ".join(_page_text(out.read_text("utf-8")).split())
    start = f"{100 * share:.0f}% of the black box's probabilities are 0 or 1"
    (warned,) = re.findall(rf"warning: ({start}.*?--calibration isotonic\)\.)", err)
    assert "student" not in err and "proba_clip=0.001" not in err
    (said,) = re.findall(rf"{start}.*?isotonic\)\.", page)
    assert said == warned


def test_printed_data_warnings_name_the_files_columns_as_the_report_does(tmp_path, capsys):
    # the data checks' printed warnings speak of the file's columns given as --features
    # ("Feature 'code'", "The file has column names"), as the report's "Data:" findings do,
    # not of the Python API's X, nor of a teacher the command line has none of
    rng = np.random.default_rng(3)
    frame = _audit_frame()
    n = len(frame)
    frame["code"] = [f"{k}_000" for k in rng.integers(1, 9, n)]  # numbers written as text
    frame["name"] = [f"n{k}" for k in rng.integers(0, 250, n)]  # nearly one level per row
    frame["age "] = rng.normal(size=n)  # a name that reads as 'age'
    frame["a & b"] = rng.normal(size=n)  # the separator of interaction term names
    path, out = tmp_path / "data.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    columns = ["age", "code", "name", "age ", "a & b"]
    assert _run(path, out, "--features", *columns, *FAST) == 0
    err = capsys.readouterr().err
    warned = [" ".join(w.split()) for w in re.split(r"^warning: ", err, flags=re.M)[1:]]
    page = out.read_text(encoding="utf-8")
    data = [
        " ".join(_page_text(item).split())
        for item in re.findall(r"<li>Data: (.*?)</li>", page, re.S)
    ]
    starts = [
        "Feature 'code' holds numbers written as text",
        "Feature 'name' is read as a categorical feature",
        "The file has column names that differ only in white space",
        "Features ['a & b'] hold ' & '",
    ]
    for start in starts:
        (said,) = [w for w in warned if w.startswith(start)]
        assert said in data  # the report says what was printed
    assert not [w for w in warned if w.startswith("X ") or "teacher" in w]


def test_the_reports_settings_name_the_options_that_reproduce_the_audit(
    tmp_path, capsys, monkeypatch
):
    # the command line's "Audit settings" name the options a user passes again (checked
    # against the parser), with the values as typed: parsing them gives back the run's own
    # settings (the features included); the Python API's report of the same audit names the
    # parameters
    import copy

    from sklearn_distill.__main__ import _parser
    from sklearn_distill.report import audit_report_sections

    frame = _audit_frame()
    frame["record"] = np.arange(len(frame)) // 2
    frame.loc[frame["group"] == "a", "group"] = "é"  # a letter cp1252 writes in its own way
    frame.loc[:5, "age"] = -99  # missing, as --na-values says
    path, out = tmp_path / "d.csv", tmp_path / "r.html"
    # a file read with other options than the defaults: the settings must name them too
    frame.to_csv(path, index=False, sep=";", decimal=",", encoding="cp1252")
    given = [
        *FEATURES,
        *("--calibration", "spline", "--cv", "2", "--n-bootstrap", "20", "--rules", "0"),
        *("--min-weight", "8", "--random-state", "3", "--confidence", "0.9", "--stability", "2"),
        *("--max-bins", "32", "--groups", "record", "--quiet", "--response", "predict"),
        *("--sep", ";", "--decimal", ",", "--encoding", "cp1252", "--na-values", "NA", "-99"),
        *("--event", "1", "--runs", "3"),
    ]
    audits = _captured_audits(monkeypatch)
    assert _run(path, out, *given) == 0
    capsys.readouterr()
    pairs = _settings_pairs(out.read_text(encoding="utf-8"))
    _, parser = _parser()
    required = [str(path), "--score", "risk", "--label", "outcome"]
    typed = []
    for key, value in pairs:
        named = re.findall(r"--[a-z][a-z-]*", key)
        if not named:
            continue
        (option,) = named
        value = value.split(" (")[0]  # the stability refits' count, before what they were
        if value.endswith("%"):
            value = f"{float(value[:-1]) / 100:g}"
        typed += [option, *shlex.split(value)]  # as a shell reads it: --na-values NA -99
    # every option named is the parser's, its value one the parser reads back as given
    # (--quiet and --rules 0 change nothing fitted)
    run = vars(parser.parse_args([*required, *given]))
    untyped = ("quiet", "rules")
    assert vars(parser.parse_args([*required, *typed])) == {
        **vars(parser.parse_args(required)),
        **{k: v for k, v in run.items() if k not in untyped},
    }
    keys = " ".join(key for key, _ in pairs)
    assert "min_weight" not in keys and "random_state" not in keys
    assert dict(pairs)["rows to test a value (--min-weight)"] == "8"  # as typed, not 8.0
    assert dict(pairs)["field separator (--sep)"] == "';'"  # quoted: a shell ends a command at ;
    # the Python API's report of the same audit names the parameters
    audit = copy.copy(audits[0])
    del audit._option_terms_, audit._option_names_
    (section,) = [s for s in audit_report_sections(audit) if s.heading == "Audit settings"]
    assert {"random_state", "min_weight (rows to test a value)"} <= set(section.items)
    assert not [key for key in section.items if "--" in key]
    assert section.items["calibration of the score"] == "spline"
    assert dict(pairs)["runs of adjacent values per thin feature (--runs)"] == "3"


def test_the_reports_settings_run_again_for_an_event_with_a_space_and_dashed_missing_texts(
    tmp_path, capsys
):
    # an outcome event of two words ("Charged Off"), missing-value texts the parser would read
    # as options ("--", "-inf"), and columns whose names hold a space or a comma or start with
    # a dash: the settings, typed after their options as a shell reads them, must parse back
    # to the run's own (--event Charged Off, --na-values --, --features loan amount and a
    # column list joined with ", " are refused or read otherwise by the parser)
    from sklearn_distill.__main__ import _parser

    frame = _audit_frame()
    frame["outcome"] = np.where(frame["outcome"] == 1, "Charged Off", "Fully Paid")
    frame["age"] = frame["age"].astype(object)
    frame.loc[:3, "age"] = "--"  # missing, as --na-values says
    frame = frame.rename(columns={"age": "loan amount", "group": "a,b"})
    frame["-hour"] = [f"{h % 24:02d}" for h in range(len(frame))]
    frame.loc[5, "-hour"] = "late"  # not a number: counted in a note, not typed back
    frame["branch code"] = np.arange(len(frame)) % 3
    frame["record id"] = np.arange(len(frame)) // 2
    path, out = tmp_path / "d.csv", tmp_path / "r.html"
    frame.to_csv(path, index=False)
    features = ["--features", "loan amount", "a,b", "branch code", "--features=-hour"]
    given = [*features, *FAST, "--event", "Charged Off", "--na-values", "NA", "--na-values=--"]
    given += ["--na-values=-inf", "--categorical", "branch code", "--numeric=-hour"]
    given += ["--groups", "record id"]
    assert _run(path, out, *given) == 0
    capsys.readouterr()
    pairs = _settings_pairs(out.read_text(encoding="utf-8"))
    named = ("--event", "--na-values", "--features", "--categorical", "--numeric", "--groups")
    typed = []
    for key, value in pairs:
        options = re.findall(r"--[a-z][a-z-]*", key)
        if not options or options[0] not in named:
            continue
        words = shlex.split(value.split(" (a value of")[0])
        # a value written as the options themselves (--na-values=--) is typed as it is
        typed += words if words[0].startswith(f"{options[0]}=") else [options[0], *words]
    _, parser = _parser()
    required = [str(path), "--score", "risk", "--label", "outcome"]
    run, back = (parser.parse_args([*required, *args]) for args in (given, typed))
    attributes = [option[2:].replace("-", "_") for option in named]
    assert {a: getattr(back, a) for a in attributes} == {a: getattr(run, a) for a in attributes}
    assert "cells not a number in the columns read as numbers" in dict(pairs)  # the note, apart


def test_the_suggested_command_runs_as_printed_with_columns_and_values_read_as_options(
    tmp_path, capsys
):
    # columns (and an outcome event) whose names start with a dash were printed after their
    # option ("--features -hour age", "--event -x"), which the parser refuses: pasted as
    # printed, the suggested command did not run
    from sklearn_distill.__main__ import _parser

    frame = _audit_frame().rename(columns={"risk": "-risk", "age": "-hour"})
    frame["outcome"] = np.where(frame["outcome"] == 1, "-x", "y")
    frame["loan amount"] = np.arange(len(frame)) % 7
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    given = ["--score=-risk", "--label", "outcome", "--event=-x", "--categorical", "loan amount"]
    with pytest.raises(SystemExit):
        main(["audit", str(path), *given], prog="sklearn-distill")
    suggested = capsys.readouterr().err.splitlines()[-1]
    words = shlex.split(suggested)
    assert words[:2] == ["sklearn-distill", "audit"]
    _, parser = _parser()
    back = parser.parse_args(words[2:])
    assert (back.score, back.label, back.event) == ("-risk", "outcome", "-x")
    assert back.categorical == ["loan amount"]
    assert {"-hour", "loan amount"} <= set(back.features) <= set(frame.columns) - {"-risk"}


def test_values_typed_back_after_an_option_parse_back_to_themselves():
    from sklearn_distill.__main__ import _parser
    from sklearn_distill._shell import option_tokens, typed_back

    _, parser = _parser()
    required = ["d.csv", "--score", "s", "--label", "y"]
    for names in (["a b", "c,d"], ["-x", "plain"], ["--", "-99"], ["-1.5", "-"]):
        args = parser.parse_args([*required, *option_tokens("--features", names)])
        assert args.features == names, names
        words = shlex.split(typed_back("--features", names))
        typed = words if words[0].startswith("--features=") else ["--features", *words]
        assert parser.parse_args([*required, *typed]).features == names, names


def test_a_score_with_nothing_to_correlate_is_printed_and_reported_without_nan(tmp_path, capsys):
    # A logistic regression's log-odds (linear in age, an effect per group), read as given,
    # lie in the missing-feature test's adjustment: the test has nothing to correlate and
    # draws no resample. The printed findings hold its verdict, not a table of NaN; the
    # report's settings give the resamples asked for (not 0, which --n-bootstrap refuses),
    # and no picture of residuals that are rounding (its title read "pearson nan [nan, nan]").
    frame = _audit_frame()
    effect = frame["group"].map({"a": 0.0, "b": 0.4, "<b>c</b>": -0.3}).fillna(0.1)
    frame["risk"] = -(frame["age"] - 40) / 10 + effect
    path = tmp_path / "linear.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "report.html"
    status = _run(path, out, *FEATURES, "--calibration", "none", "--n-bootstrap", "50")
    assert status == 0
    captured = capsys.readouterr()
    assert "warning: the missing-feature test has nothing to correlate" in captured.err
    printed = captured.out
    test_part = printed[printed.index("Missing-feature test:") :]
    assert "nothing to correlate" in " ".join(test_part.split())
    assert not re.search(r"\bnan\b", printed, re.IGNORECASE)
    page = out.read_text(encoding="utf-8")
    assert (
        "missing-feature test resamples (--n-bootstrap)",
        "50 (none drawn: the test had nothing to correlate)",
    ) in _settings_pairs(page)
    section = page[page.index("<h2>Missing-feature test</h2>") :]
    section = section[: section.index("<h2>", 4)]
    assert "The test has nothing to correlate" in section
    assert "<img" not in section
    assert not re.search(r"\bnan\b", _page_text(section), re.IGNORECASE)


def test_the_rules_calibration_folds_keep_each_record_together(tmp_path, capsys, monkeypatch):
    # every case entered twice: with --groups, no calibration fold of the whole file (the
    # audit's and the rules') may hold one copy of a case on its fitting side and the other on
    # its held-out side, which would make the held-out probabilities optimistic
    import sklearn_distill._calibration as calibration

    frame = _audit_frame(n=120)
    frame["case"] = np.arange(len(frame))
    twice = pd.concat([frame, frame], ignore_index=True)
    path = tmp_path / "twice.csv"
    twice.to_csv(path, index=False)
    splits = []

    def spied(kind):
        class Spied(kind):
            def split(self, X, y=None, groups=None):
                for train, test in super().split(X, y, groups):
                    splits.append((len(X), train, test))
                    yield train, test

        return Spied

    for name in ("StratifiedKFold", "StratifiedGroupKFold"):
        monkeypatch.setattr(calibration, name, spied(getattr(calibration, name)))
    case = twice["case"].to_numpy()
    args = [*FEATURES, "--cv", "3", "--n-bootstrap", "20", "--quiet", "--groups", "case"]
    fitted = []
    from sklearn_distill.tree import DistilledTree

    fit = DistilledTree.fit
    monkeypatch.setattr(
        DistilledTree, "fit", lambda self, *a, **k: fitted.append(len(splits)) or fit(self, *a, **k)
    )
    assert _run(path, tmp_path / "rules.html", *args, "--rules", "4") == 0
    capsys.readouterr()
    assert fitted, "the rules were not fitted"
    whole = [(train, test) for n, train, test in splits if n == len(twice)]
    # the rules' own folds are among them (they are made after the audit's)
    assert any(n == len(twice) for n, _, _ in splits[fitted[0] :])
    for train, test in whole:
        assert not set(case[train]) & set(case[test])


def test_record_identifiers_are_read_as_written(tmp_path, capsys, monkeypatch):
    # "007" and "7" are two records (read as numbers they had been one), and the spaces a
    # spreadsheet leaves around a cell make no other record (" 8" is "8")
    frame = _audit_frame(n=240)
    frame["case"] = [("00" if i % 2 else "") + str(i // 2) for i in range(len(frame))]
    frame.loc[[4, 5], "case"] = [" 8", "8 "]  # of record 8 (rows 16 and 17 are 8 and 008)
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    audits = _captured_audits(monkeypatch)
    args = [*FEATURES, "--cv", "2", "--n-bootstrap", "20", "--rules", "0", "--quiet"]
    assert _run(path, tmp_path / "codes.html", *args, "--groups", "case") == 0
    capsys.readouterr()
    codes = audits[0]._record_codes_
    expected = frame["case"].str.strip()
    assert np.unique(codes).size == expected.nunique() == len(frame) - 2
    # the codes name the same records as the identifiers written
    pairs = pd.DataFrame({"code": codes, "written": expected})
    assert (pairs.groupby("code")["written"].nunique() == 1).all()
    assert (pairs.groupby("written")["code"].nunique() == 1).all()
    # a cell of spaces is no identifier
    frame.loc[7, "case"] = "   "
    frame.to_csv(path, index=False)
    with pytest.raises(SystemExit):
        _run(path, tmp_path / "codes.html", *args, "--groups", "case")
    err = capsys.readouterr().err
    # how many, and where the first is: line 9 is data row 8 under the header
    assert "--groups 'case' has missing record identifiers: 1 of 240 rows, e.g. data row 8 " in err
    assert f"(line 9 of {str(path)!r})" in err


def test_the_rules_read_the_score_in_the_audits_direction(tmp_path, capsys, monkeypatch):
    # a probability whose rows below the 1e-4 clip fall with the event while the rest rise:
    # read as given the score clearly falls; read as its clipped log-odds, where the small
    # values tie, it clearly rises. The audit had read it as given and the rules re-decided on
    # their own reading, calibrating the score the other way from the audit
    from sklearn_distill._calibration import calibration_direction, score_direction
    from sklearn_distill._teacher import scores_to_target
    from sklearn_distill.tree import DistilledTree

    rng = np.random.default_rng(0)
    frame = _audit_frame(n=600)
    small = np.arange(600) < 400
    event = np.where(small, rng.uniform(size=600) < 0.5, rng.uniform(size=600) < 0.75)
    frame["outcome"] = event.astype(int)
    frame["risk"] = np.where(
        small,
        np.where(event, rng.uniform(1e-8, 4e-5, 600), rng.uniform(5e-5, 9e-5, 600)),
        rng.uniform(0.2, 0.8, 600),
    )
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    score, y = pd.read_csv(path)["risk"].to_numpy(), frame["outcome"].to_numpy()
    assert score_direction(score, y) == -1
    assert score_direction(scores_to_target(score, "predict_proba", 1.0, 1e-4), y) == 1
    trees = []
    fit = DistilledTree.fit
    monkeypatch.setattr(
        DistilledTree, "fit", lambda self, *a, **k: trees.append(self) or fit(self, *a, **k)
    )
    audits = _captured_audits(monkeypatch)
    args = [*FEATURES, "--cv", "3", "--n-bootstrap", "20", "--quiet", "--rules", "4"]
    assert _run(path, tmp_path / "tiny.html", *args, "--response", "predict_proba") == 0
    capsys.readouterr()
    (audit,) = audits
    (tree,) = trees
    # the audit reads the direction on what its calibration reads (the clipped log-odds), and
    # the rules read it as the audit does
    assert calibration_direction(audit.mimic_.calibrator_) == 1
    assert calibration_direction(tree.calibrator_) == 1
    # whatever the audit decides, the rules take it (not a reading of their own)
    import sklearn_distill.audit as audit_module

    monkeypatch.setattr(audit_module, "warn_if_score_falls", lambda *a, **k: (-1, None))
    trees.clear()
    audits.clear()
    assert _run(path, tmp_path / "tiny.html", *args, "--response", "predict_proba") == 0
    capsys.readouterr()
    (audit,) = audits
    (tree,) = trees
    assert calibration_direction(audit.mimic_.calibrator_) == -1
    assert calibration_direction(tree.calibrator_) == -1
