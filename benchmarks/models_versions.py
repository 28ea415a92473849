"""The gradient of each of the paper's five models' losses (knetapi, numpy backend, float32, the
paper's sizes, random data of the data sets' shapes) in one source tree: the minimum CPU time of
``--repeats`` calls, in milliseconds, one thread.

Usage: ``python benchmarks/models_versions.py TREE [--repeats 5]`` (run it for two trees alternately).
"""

import importlib
import sys
import time

tree = sys.argv[1]
repeats = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--repeats" else 5
sys.path[:0] = [tree, f"{tree}/examples"]
import numpy as np  # noqa: E402
import knetapi as kn  # noqa: E402
assert kn.__file__.startswith(tree), kn.__file__

rng = np.random.default_rng(0)
images = rng.uniform(size=(100, 1, 28, 28)).astype(np.float32)
labels = rng.integers(0, 10, 100)
cases = {
    "linreg": (lambda m: m.init(13, 0),
               (rng.standard_normal((506, 13)).astype(np.float32),
                rng.standard_normal((506, 1)).astype(np.float32))),
    "softmax": (lambda m: m.init(0), (images.reshape(100, -1), labels)),
    "mlp": (lambda m: m.init(0), (images.reshape(100, -1), labels)),
    "lenet": (lambda m: m.init(0), (images, labels)),
    "charlm": (lambda m: m.init(63, 0), (rng.integers(0, 63, (128, 101)),)),
}
results = []
for name, (init, data) in cases.items():
    model = importlib.import_module(name)
    w = init(model)
    gradient = kn.grad(model.loss)
    gradient(w, *data)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        gradient(w, *data)
        times.append(time.process_time() - start)
    results.append(f"{name} {min(times) * 1e3:.2f}")
print(tree, "|", ", ".join(results), "ms")
