"""The gradient of the paper's softmax model's loss (nll of a linear layer, batch 100 of 784
features, 10 classes, float32) in one source tree: the 10th percentile of 300 calls, CPU time.

Usage: ``python benchmarks/softmax_step_versions.py TREE`` (run it for two trees alternately).
"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, knetapi as kn
assert kn.__file__.startswith(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((100, 784)).astype(np.float32)
y = rng.integers(0, 10, 100)
w = [rng.standard_normal((784, 10)).astype(np.float32) * 0.01, np.zeros(10, np.float32)]
g = kn.grad(lambda w: kn.nll(x @ w[0] + w[1], y))
g(w)
ts = []
for _ in range(300):
    s = time.process_time(); g(w); ts.append(time.process_time() - s)
ts.sort()
print(sys.argv[1], "softmax-regression step grad: %.1f us (10th pct CPU)" % (ts[30] * 1e6))
