"""Max pooling's gradient (2x2 windows, LeNet's two pooled shapes, float32) in one source tree:
``kn.grad`` of ``sum(pool(x) * 1.5)``, the minimum CPU time of 15 calls, in milliseconds.

Usage: ``python benchmarks/pool_versions.py TREE`` (run it for two trees alternately).
"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, knetapi as kn
assert kn.__file__.startswith(sys.argv[1])
out = []
for shape in [(100,20,24,24),(100,50,8,8)]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    gf = kn.grad(lambda x: kn.sum(kn.pool(x) * 1.5))
    gf(x); ts = []
    for _ in range(15):
        s = time.process_time(); gf(x); ts.append(time.process_time() - s)
    out.append(min(ts) * 1e3)
print(sys.argv[1], "pool grad (min CPU ms): %.2f %.2f" % tuple(out))
