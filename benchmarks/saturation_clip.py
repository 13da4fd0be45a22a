"""Saturated teachers: the clip of teacher probabilities against the student's fidelity.

A random forest's votes are often exactly 0 or 1; before log-odds they are clipped to
``[proba_clip, 1 - proba_clip]``. This script fits a random forest and a boosted model on COMPAS
(bundled) and on scikit-learn's breast-cancer data, distils each into DistilledGAM and DistilledTree students with several clips on 75%
of the rows, and scores them on the other 25%: R^2 on log-odds (at that clip, as
``fidelity()`` reports it), agreement at 0.5, AUC against the teacher's labels, and the mean
absolute error on the probability scale, which does not depend on the clip and so compares
clips fairly.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/saturation_clip.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from sklearn_distill import DistilledGAM, DistilledTree
from sklearn_distill.datasets import load_compas

CLIPS = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2)


def teachers(X, y, seed):
    categorical = X.select_dtypes(exclude="number").columns.tolist()
    encode = make_column_transformer(
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
        remainder="passthrough",
    )
    forest = make_pipeline(
        clone(encode), RandomForestClassifier(n_estimators=300, random_state=seed)
    )
    # ordinal codes for both: charge descriptions have more categories than HGB's 255
    boosted = make_pipeline(encode, HistGradientBoostingClassifier(random_state=seed))
    return {"random forest": forest.fit(X, y), "boosted trees": boosted.fit(X, y)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*probabilities are 0 or 1")
    warnings.filterwarnings("ignore", message=".*categories not seen at fit")
    compas_X, compas_y, _ = load_compas(return_X_y=True)
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True, as_frame=True)
    records = []
    for data, X, y in (("COMPAS", compas_X, compas_y), ("breast cancer", cancer_X, cancer_y)):
        run(data, X, y, args.seed, records)
    table = pd.DataFrame(records)
    print(table.round(4).to_string(index=False))


def run(data, X, y, seed, records):
    for name, teacher in teachers(X, y, seed).items():
        X_fit, X_test = train_test_split(X, test_size=0.25, random_state=seed)
        p_test = teacher.predict_proba(X_test)[:, 1]
        saturated = np.mean(np.isin(teacher.predict_proba(X)[:, 1], (0.0, 1.0)))
        print(f"{data}, {name}: {100 * saturated:.1f}% of the probabilities are exactly 0 or 1")
        for clip in CLIPS:
            for kind, model in (
                ("GAM", DistilledGAM(teacher, proba_clip=clip, random_state=seed, n_jobs=1)),
                ("tree (16 leaves)", DistilledTree(teacher, proba_clip=clip, max_leaf_nodes=16)),
            ):
                start = time.process_time()
                model.fit(X_fit)
                fidelity = model.fidelity(X_test)
                p_student = model.predict_proba(X_test)[:, 1]
                records.append(
                    {
                        "data": data,
                        "teacher": name,
                        "student": kind,
                        "proba_clip": clip,
                        "r2_logodds": fidelity["r2"],
                        "agreement": fidelity["agreement"],
                        "auc": fidelity["auc"],
                        "prob_mae": float(np.mean(np.abs(p_student - p_test))),
                        "cpu_s": time.process_time() - start,
                    }
                )
                print(pd.DataFrame(records[-1:]).round(4).to_string(index=False, header=False))


if __name__ == "__main__":
    main()
