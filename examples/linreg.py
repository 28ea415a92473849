"""The Knet paper's linear regression, as plain Python, on the UCI Boston Housing data.

    python examples/linreg.py [--backend numpy|torch|cupy] [--epochs 200] [--batch N] [--lr 0.1] [--seed 0]

Only the forward computation is written (``predict``, ``loss``); ``kn.grad(loss)`` gives its
gradient. Row-major and batch-first: ``x`` is (N, 13), ``y`` is (N, 1), and the parameters are
``w = [weights (13, 1), bias (1,)]``, float32. A random fifth of the houses is held out for testing.
"""

from __future__ import annotations

import numpy as np

import knetapi as kn
from common import arguments, on


def predict(w, x):
    """The predicted median house values, (N, 1), for the rows of ``x``."""
    return x @ w[0] + w[1]


def loss(w, x, y):
    """Mean squared error of ``predict(w, x)`` against ``y``."""
    return kn.mean((predict(w, x) - y) ** 2)


lossgradient = kn.grad(loss)


def train(w, data, lr=0.1, epochs=1):
    """SGD: for every minibatch ``(x, y)`` of ``data``, in each epoch, step against the gradient."""
    for _ in range(epochs):
        for x, y in data:
            g = lossgradient(w, x, y)
            w = [wi - lr * gi for wi, gi in zip(w, g)]
    return w


def init(features, seed):
    """Small random weights and a zero bias, float32."""
    rng = np.random.default_rng(seed)
    return [kn.init.gaussian((features, 1), std=0.1, rng=rng), kn.init.zeros(1)]


def rmse(w, x, y):
    """Root mean squared error of the predictions, in the units of ``y``."""
    return float(kn.sqrt(loss(w, x, y)))


def main(argv=None):
    args = arguments(__doc__, argv, epochs=200, batch=None, lr=0.1)
    xtrn, ytrn, xtst, ytst = on(args.backend, kn.data.split(*kn.data.housing(), rng=args.seed))
    w = on(args.backend, init(xtrn.shape[1], args.seed))
    data = kn.minibatch(xtrn, ytrn, args.batch or xtrn.shape[0], partial=True)   # the paper: one batch
    print(f"linear regression, UCI Boston Housing: {xtrn.shape[0]} training and {xtst.shape[0]} "
          f"test houses, {xtrn.shape[1]} features; backend {args.backend}")
    print(f"epoch {0:5d}  loss {float(loss(w, xtrn, ytrn)):10.4f}")
    every = max(1, args.epochs // 10)
    epochs = kn.progress(range(1, args.epochs + 1))
    for epoch in epochs:
        w = train(w, data, args.lr)
        if epoch % every == 0 or epoch == args.epochs:
            value = float(loss(w, xtrn, ytrn))
            epochs.record(value)
            print(f"epoch {epoch:5d}  loss {value:10.4f}")
    baseline = float(kn.sqrt(kn.mean((ytst - kn.mean(ytrn)) ** 2)))
    print(f"test RMSE {rmse(w, xtst, ytst):.3f} ($1000s); the mean predictor's: {baseline:.3f}")


if __name__ == "__main__":
    main()
