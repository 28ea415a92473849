"""The Knet paper's linear regression, as plain Python, on the UCI Boston Housing data.

    python examples/linreg.py [--epochs 200] [--lr 0.1] [--seed 0]

Only the forward computation is written (``predict``, ``loss``); ``kn.grad(loss)`` gives its
gradient. Row-major and batch-first: ``x`` is (N, 13), ``y`` is (N, 1), and the parameters are
``w = [weights (13, 1), bias (1,)]``, all float32 numpy arrays.
"""

from __future__ import annotations

import argparse

import numpy as np

import knetapi as kn
from knetapi.data import housing


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
    return [(0.1 * rng.standard_normal((features, 1))).astype(np.float32), np.zeros(1, np.float32)]


def rmse(w, x, y):
    """Root mean squared error of the predictions, in the units of ``y``."""
    return float(kn.sqrt(loss(w, x, y)))


def mean_rmse(y):
    """The RMSE of the mean predictor (always predicting ``mean(y)``): the baseline to beat."""
    return float(kn.sqrt(kn.mean((y - kn.mean(y)) ** 2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200,
                        help="passes over the data (default 200)")
    parser.add_argument("--lr", type=float, default=0.1,
                        help="learning rate (default 0.1; above about 0.15 it diverges)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights (default 0)")
    args = parser.parse_args(argv)

    x, y = housing()
    w = init(x.shape[1], args.seed)
    data = [(x, y)]                 # one full batch per epoch, as in the paper
    every = max(1, args.epochs // 10)
    print(f"linear regression, UCI Boston Housing: {x.shape[0]} houses, {x.shape[1]} features")
    print(f"epoch {0:5d}  loss {float(loss(w, x, y)):10.4f}")
    done = 0
    while done < args.epochs:
        steps = min(every, args.epochs - done)
        w = train(w, data, args.lr, steps)
        done += steps
        print(f"epoch {done:5d}  loss {float(loss(w, x, y)):10.4f}")
    print(f"train RMSE {rmse(w, x, y):.3f} ($1000s); the mean predictor's: {mean_rmse(y):.3f}")


if __name__ == "__main__":
    main()
