"""Why was this loan rejected? A black-box credit model distilled into rules.

A lender scores applicants with a gradient-boosting model (the black box). To tell a rejected
applicant the exact rule behind the decision, the model's risk is distilled into a small
regression tree on its log-odds (``DistilledTree``), with a monotone constraint that a
regulator would ask for: more income never raises the predicted risk. The script prints the
tree's fidelity to the black box on held-out applicants, checks the constraint on pairs of
applicants who differ in income only, prints every rule, and for three rejected applicants the
rule that rejected them. It also prints how often the rules and the black box decide alike at
the lender's cutoff: each rule gives its rows their mean risk, so a few rules flatten the high
risks a cutoff above the mean separates, and reject fewer applicants than the black box.

The data are generated (income, debt ratio, years of credit history, past delinquencies, and
the loan's purpose, a categorical feature), so the script runs anywhere in a few seconds:

    OMP_NUM_THREADS=1 PYTHONPATH=. python examples/compare_rules_lending.py [--seed 0]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import parse_seed  # the examples folder, as run from the repository root

from sklearn_distill import DistilledTree

#: Applicants whose predicted risk of default is above this are rejected.
CUTOFF = 0.4
PURPOSES = ["car", "home improvement", "education", "business", "debt consolidation"]


def make_applicants(n=20_000, seed=0):
    """Applicants and whether they defaulted, from a known risk (log-odds) model."""
    rng = np.random.default_rng(seed)
    applicants = pd.DataFrame(
        {
            "income": np.round(rng.lognormal(np.log(45_000), 0.5, n), -2),
            "debt_ratio": np.round(rng.beta(2, 5, n), 3),
            "history_years": rng.integers(0, 30, n),
            "delinquencies": rng.poisson(0.4, n),
            "purpose": pd.Categorical(rng.choice(PURPOSES, n, p=[0.25, 0.2, 0.15, 0.15, 0.25])),
        }
    )
    purpose_risk = {"car": 0.0, "home improvement": -0.3, "education": 0.2, "business": 0.8}
    logit = (
        -1.2
        - 1.1 * np.log(applicants["income"] / 45_000)
        + 4.0 * (applicants["debt_ratio"] - 0.3)
        - 0.05 * applicants["history_years"]
        + 0.7 * applicants["delinquencies"]
        + applicants["purpose"].astype(str).map(purpose_risk).fillna(0.5).to_numpy()
    )
    default = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return applicants, default


def monotonicity_breaks(predict, rows, feature, step, direction):
    """Share of pairs (row, row with ``feature`` raised by ``step``) whose prediction moves
    against ``direction`` (+1: must not fall, -1: must not rise)."""
    raised = rows.copy()
    raised[feature] = raised[feature] + step
    change = predict(raised) - predict(rows)
    return float(np.mean(direction * change < -1e-12))


def main(seed=0):
    applicants, default = make_applicants(seed=seed)
    X_train, X_test, y_train, _ = train_test_split(
        applicants, default, test_size=0.3, random_state=0
    )
    black_box = HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=0
    ).fit(X_train, y_train)

    tree = DistilledTree(
        black_box,
        max_leaf_nodes=16,
        monotone_constraints={"income": -1},  # more income never raises the risk
        random_state=0,
    ).fit(X_train)
    fidelity = tree.fidelity(X_test)
    print(
        f"fidelity to the black box on {len(X_test)} held-out applicants: "
        f"R^2 on log-odds {fidelity['r2']:.3f}, decisions at probability 0.5 agree on "
        f"{fidelity['agreement']:.1%}, AUC {fidelity['auc']:.3f}"
    )
    rows = X_test.sample(2_000, random_state=0)
    for step in (1_000, 10_000):
        tree_share = monotonicity_breaks(
            lambda X: tree.predict_proba(X)[:, 1], rows, "income", step, -1
        )
        box_share = monotonicity_breaks(
            lambda X: black_box.predict_proba(X)[:, 1], rows, "income", step, -1
        )
        print(
            f"pairs where {step:,} more income raises the predicted risk: rules {tree_share:.1%}, "
            f"black box {box_share:.1%}"
        )

    rules = tree.rules()
    print("\nthe rules (risk = the black box's probability of default, as mimicked):")
    for rule in rules.itertuples():
        print(
            f"  rule {rule.rule_id}: risk {rule.probability:.2f}  {rule.share:5.1%} of "
            f"applicants  if {rule.rule}"
        )

    risk = black_box.predict_proba(X_test)[:, 1]
    rule_risk = tree.predict_proba(X_test)[:, 1]
    both = (risk > CUTOFF) & (rule_risk > CUTOFF)
    agree = np.mean((risk > CUTOFF) == (rule_risk > CUTOFF))
    print(
        f"\nat the lender's cutoff ({CUTOFF}) decisions agree on {agree:.1%}: the black box "
        f"rejects {int((risk > CUTOFF).sum())} held-out applicants, the rules "
        f"{int((rule_risk > CUTOFF).sum())}, both {int(both.sum())}; three rejected by both:"
    )
    rejected = X_test[both].head(3)
    explained = tree.explain(rejected)
    for (index, applicant), (_, why) in zip(rejected.iterrows(), explained.iterrows()):
        print(f"  applicant {index}: {applicant.to_dict()}")
        print(
            f"    black box risk {risk[X_test.index.get_loc(index)]:.2f}; rejected by rule "
            f"{why['rule_id']} (risk {why['probability']:.2f}): {why['rule']}"
        )


def parse_args(argv=None):
    return parse_seed(__doc__, "applicants", argv)


if __name__ == "__main__":
    main(parse_args().seed)
