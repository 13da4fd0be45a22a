"""Student-size pilot on the smooth teacher of gam_speed.py: fidelity against complexity.

Fits EBM students with 0, 2, 5 and 10 interactions and regression trees of depth 2 to 8 on
7,500 of 10,000 rows and scores them on the other 2,500; writes the table and a PNG.

    PYTHONPATH=. .venv/bin/python benchmarks/gam_pilot.py --out benchmarks/gam_pilot.png
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
warnings.filterwarnings("ignore", message="Missing values detected")
sys.path.insert(0, str(Path(__file__).parent))

from gam_speed import make_data, teacher

from sklearn_distill.pilot import plot_student_size, student_size_pilot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--out", default="gam_pilot.png")
    args = parser.parse_args(argv)
    X, _ = make_data(args.rows, seed=0)
    table = student_size_pilot(teacher, X, random_state=0, verbose=True)
    print(table.round(4).to_string(index=False))
    figure = plot_student_size(table)
    figure.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
