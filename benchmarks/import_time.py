"""Import time of the two packages against their hosts, in fresh interpreters.

Each statement runs in a new ``python -c`` process that times only the statement (interpreter
start-up excluded) in process CPU time and wall time; the statements are interleaved round by
round (their order rotated) and the medians are reported with the ratio to ``import lightning``
(for the Lightning side) and to ``import sklearn, pandas, scipy.stats`` (for the scikit-learn
side, whose own dependencies those are). Also lists which optional heavy modules each statement
leaves loaded.

Run: PYTHONPATH=. python benchmarks/import_time.py --rounds 7      (about a minute on a quiet machine)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

STATEMENTS = {
    "import lightning": "import lightning",
    "import lightning_distill": "import lightning_distill",
    "kd names (loads lightning)": (
        "from lightning_distill import DistillationModule, KnowledgeDistillation"
    ),
    "import sklearn, pandas, scipy.stats": "import sklearn, pandas, scipy.stats",
    "import sklearn_distill": "import sklearn_distill",
}
BASELINE = {
    "import lightning_distill": "import lightning",
    "kd names (loads lightning)": "import lightning",
    "import sklearn_distill": "import sklearn, pandas, scipy.stats",
}
WATCHED = ("torch", "lightning", "captum", "pywt", "matplotlib", "pandas", "sklearn", "interpret")

CHILD = """
import json, sys, time
cpu, wall = time.process_time(), time.perf_counter()
{statement}
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
print(json.dumps({{"cpu": cpu, "wall": wall,
                  "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""


def measure(statement: str) -> dict:
    code = CHILD.format(statement=statement, watched=WATCHED)
    env_python = [sys.executable, "-c", code]
    output = subprocess.run(env_python, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    names = list(STATEMENTS)
    found = {name: [] for name in names}
    for r in range(args.rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            found[name].append(measure(STATEMENTS[name]))
    median = {
        name: {k: statistics.median(run[k] for run in runs) for k in ("cpu", "wall")}
        for name, runs in found.items()
    }
    print(f"{args.rounds} interleaved rounds, medians; ratio of CPU times to the baseline")
    print(f"{'statement':>36} | {'CPU s':>6} {'wall s':>7} | {'ratio':>6} | loaded")
    for name in names:
        base = BASELINE.get(name)
        ratio = f"{median[name]['cpu'] / median[base]['cpu']:.2f}" if base else "-"
        print(
            f"{name:>36} | {median[name]['cpu']:>6.2f} {median[name]['wall']:>7.2f} | "
            f"{ratio:>6} | {', '.join(found[name][-1]['loaded'])}"
        )


if __name__ == "__main__":
    main()
