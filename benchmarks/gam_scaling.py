"""DistilledGAM scaling: fit time and peak memory for 10k, 100k and 1M rows x 10 features.

Each size runs in a fresh Python process; its peak memory is the largest sum of the resident
memory of that process and its worker processes, sampled every 0.1 s. The teacher and data are those of
``benchmarks/gam_speed.py``; fidelity is measured on 20,000 fresh rows.

    PYTHONPATH=. .venv/bin/python benchmarks/gam_scaling.py
    PYTHONPATH=. .venv/bin/python benchmarks/gam_scaling.py --rows 1000000 --max-samples 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, sys, time, warnings
warnings.filterwarnings("ignore", message="Missing values detected")
sys.path.insert(0, "benchmarks")
from gam_scaling import TreeMemory
from gam_speed import make_data, teacher
from sklearn_distill import DistilledGAM

n_rows = int(sys.argv[1])
max_samples = int(sys.argv[2]) or None
X, _ = make_data(n_rows, seed=0)
X_test, _ = make_data(20000, seed=1)
memory = TreeMemory()
before = memory.current_mib()
memory.start()
start = time.perf_counter()
gam = DistilledGAM(teacher, random_state=0, max_samples=max_samples).fit(X)
seconds = time.perf_counter() - start
peak = memory.stop()
print(json.dumps({"rows": n_rows, "seconds": seconds, "peak_mib": peak,
                  "before_fit_mib": before, "r2": gam.fidelity(X_test)["r2"]}))
"""


class TreeMemory:
    """Peak resident memory of this process and all its descendants (the EBM's worker
    processes), sampled from /proc every 0.1 s on a background thread (Linux)."""

    def __init__(self, interval=0.1):
        self.interval = interval
        self.peak = 0.0
        self._stop = None
        self._thread = None

    @staticmethod
    def _descendants(pid):
        found = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            for child in children:
                found += [child, *TreeMemory._descendants(child)]
        return found

    @staticmethod
    def _rss_mib(pid):
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def current_mib(self):
        pid = os.getpid()
        return sum(self._rss_mib(p) for p in [pid, *self._descendants(pid)])

    def start(self):
        import threading

        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, self.current_mib())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()
        return max(self.peak, self.current_mib())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--max-samples", type=int, default=100_000, help="DistilledGAM max_samples (0: all rows)"
    )
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", os.environ.get("PYTHONPATH", "")])}
    print(f"max_samples={args.max_samples or None}")
    print(f"{'rows':>10} {'fit (s)':>9} {'peak RSS (MiB)':>15} {'before fit (MiB)':>17} {'R^2':>8}")
    for n_rows in args.rows:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(n_rows), str(args.max_samples)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            print(f"{n_rows:>10,} failed:\n{result.stderr[-2000:]}", flush=True)
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{row['rows']:>10,} {row['seconds']:>9.1f} {row['peak_mib']:>15.0f} "
            f"{row['before_fit_mib']:>17.0f} {row['r2']:>8.5f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
