"""Student-size pilot across student kinds: fidelity against size, as a table and a figure.

Rule trees of 2 to 32 leaves, sparse GAMs of 1 to 8 terms and the full GAM are fitted on 75% of
the rows and scored on the other 25% (held-out R^2 on log-odds, agreement at 0.5, AUC against
the teacher's labels). Three teachers:

- ``compas``: the COMPAS decile score (bundled), calibrated to P(re-arrest) (isotonic), the
  audit's setting;
- ``cancer``: a HistGradientBoostingClassifier trained on scikit-learn's breast-cancer data and
  queried as a black box;
- ``smooth``: the noise-free smooth teacher of gam_speed.py on 10,000 rows (plain scores).

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/gam_pilot.py --data compas \
        --out docs/images/pilot_compas.png
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Missing values detected")
warnings.filterwarnings("ignore", message=".*categories not seen at fit")
sys.path.insert(0, str(Path(__file__).parent))

from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier

from sklearn_distill.datasets import load_compas
from sklearn_distill.pilot import plot_student_size, student_kinds, student_size_pilot


def run(data, seed):
    ladder = student_kinds(random_state=seed)
    if data == "compas":
        X, y, score = load_compas(return_X_y=True)
        return student_size_pilot(
            None,
            X,
            teacher_scores=score,
            y=y,
            calibration="isotonic",
            students=ladder,
            random_state=seed,
            verbose=True,
        )
    if data == "cancer":
        X, y = load_breast_cancer(return_X_y=True, as_frame=True)
        teacher = HistGradientBoostingClassifier(random_state=seed).fit(X, y)
        return student_size_pilot(teacher, X, students=ladder, random_state=seed, verbose=True)
    from gam_speed import make_data, teacher

    X, _ = make_data(10_000, seed=seed)
    return student_size_pilot(teacher, X, students=ladder, random_state=seed, verbose=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("compas", "cancer", "smooth"), default="compas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="PNG path for the figure")
    args = parser.parse_args(argv)
    table = run(args.data, args.seed)
    print(table.round(3).to_string(index=False))
    if args.out:
        figure = plot_student_size(table)
        figure.savefig(args.out, dpi=110)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
