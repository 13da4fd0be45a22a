"""The lending example runs and prints what its docstring promises: rules monotone in income and
the rule that rejected each of three applicants, true of that applicant."""

import ast
import importlib.util
import re
from pathlib import Path

import pandas as pd

from tests.compare.test_tree import holds, parse_rule

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compare_rules_lending.py"


def test_lending_example(capsys):
    spec = importlib.util.spec_from_file_location("compare_rules_lending", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    out = capsys.readouterr().out
    assert re.findall(r"raises the predicted risk: rules (\S+),", out) == ["0.0%", "0.0%"]
    applicants = re.findall(r"applicant \d+: (\{.*\})", out)
    rules = re.findall(r"rejected by rule \d+ \(risk ([\d.]+)\): (.*)", out)
    assert len(applicants) == len(rules) == 3
    for text, (risk, rule) in zip(applicants, rules):
        applicant = ast.literal_eval(text)  # the example prints each applicant as a dict
        assert holds(parse_rule(rule), applicant)
        assert float(risk) > module.CUTOFF
    # the agreement at the lender's cutoff, recomputed from the counts printed beside it
    agree, box, rules_, both = re.search(
        r"cutoff \(\S+\) decisions agree on ([\d.]+)%: the black box rejects (\d+) held-out "
        r"applicants, the rules (\d+), both (\d+)",
        out,
    ).groups()
    n_test = int(re.search(r"on (\d+) held-out applicants", out)[1])
    same = n_test - (int(box) - int(both)) - (int(rules_) - int(both))
    assert abs(float(agree) - 100 * same / n_test) < 0.05 + 1e-9
    assert isinstance(module.make_applicants(50)[0]["purpose"].dtype, pd.CategoricalDtype)
