"""Compare the tape's cost per op across versions of knetapi, on a shared machine.

Each source tree (a checkout, e.g. a ``git worktree`` of an older commit) runs the per-op chain of
benchmarks/perop.py (1,000 ``sin`` ops over 4-element float64 arrays, ``kn.grad`` of the sum) in
its own process, the trees alternating ``--rounds`` times. Each process reports the minimum
process CPU time of 20 calls per op, and the per-call cost of ``grad``: the 10th percentile of
2,000 calls of the gradient of ``sum(w[0] * w[1])`` for two 4-element leaves (boxing, two ops,
the backward walk, the gradient list). On a machine shared with other work, CPU time is steadier
than wall-clock time, and the low end is the run least disturbed.

Usage: ``python benchmarks/perop_versions.py TREE [TREE ...] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import knetapi as kn
assert kn.__file__.startswith(sys.argv[1]), kn.__file__

def chain(x):
    for _ in range(1000):
        x = kn.sin(x)
    return kn.sum(x)

gradient = kn.grad(chain)
x = np.full(4, 0.5)
gradient(x)
times = []
for _ in range(20):
    start = time.process_time()
    gradient(x)
    times.append(time.process_time() - start)
per_op = min(times) / 1001 * 1e6

step = kn.grad(lambda w: kn.sum(w[0] * w[1]))         # two leaves, two ops: the per-call cost
w = [np.full(4, 0.5), np.full(4, 2.0)]
step(w)
times = []
for _ in range(2000):
    start = time.process_time()
    step(w)
    times.append(time.process_time() - start)
print(per_op, sorted(times)[len(times) // 10] * 1e6)
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    results: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            tree_path = os.path.abspath(tree)
            out = subprocess.run([sys.executable, "-c", CHILD, tree_path], env=env, check=True,
                                 capture_output=True, text=True)
            results[tree].append(tuple(float(v) for v in out.stdout.split()))
    for tree, values in results.items():
        print(f"{tree}: per op " + ", ".join(f"{op:.2f}" for op, _ in values) + " us (min CPU time); "
              f"per call " + ", ".join(f"{call:.1f}" for _, call in values) + " us (10th percentile)")
    return results


if __name__ == "__main__":
    main()
