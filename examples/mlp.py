"""The Knet paper's multi-layer perceptron: one hidden layer of 64 relu units, on MNIST-format images.

    python examples/mlp.py [--backend numpy|torch|cupy] [--epochs 10] [--batch 100] [--lr 0.1] [--seed 0]

Data as in softmax.py (``kn.data.mnist()``, Fashion-MNIST by default). The parameters are a list of
weights and biases, layer after layer: ``w = [(784, 64), (64,), (64, 10), (10,)]``; ``predict``
loops over the layers, so more hidden layers are just a longer list.
"""

from __future__ import annotations

import numpy as np

import knetapi as kn
from common import arguments, evaluate, on


def predict(w, x):
    """Class scores (N, 10): relu hidden layers, then a linear output layer."""
    x = kn.mat(x)
    for i in range(0, len(w) - 2, 2):
        x = kn.relu(x @ w[i] + w[i + 1])
    return x @ w[-2] + w[-1]


def loss(w, x, ygold):
    """Softmax cross-entropy of the scores against the integer labels ``ygold``."""
    return kn.nll(predict(w, x), ygold)


lossgradient = kn.grad(loss)


def train(w, data, lr=0.1, epochs=1):
    """SGD over the minibatches of ``data``."""
    for _ in range(epochs):
        for x, y in data:
            g = lossgradient(w, x, y)
            w = [wi - lr * gi for wi, gi in zip(w, g)]
    return w


def init(seed, sizes=(784, 64, 10)):
    """Xavier weights and zero biases for layers of these sizes."""
    rng = np.random.default_rng(seed)
    w = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w += [kn.init.xavier((n_in, n_out), rng=rng), kn.init.zeros(n_out)]
    return w


def main(argv=None):
    args = arguments(__doc__, argv, epochs=10, batch=100, lr=0.1)
    xtrn, ytrn, xtst, ytst = on(args.backend, kn.data.mnist())
    w = on(args.backend, init(args.seed))
    dtrn = kn.progress(kn.minibatch(xtrn, ytrn, args.batch, shuffle=True, rng=args.seed))
    dtst = kn.minibatch(xtst, ytst, 1000, partial=True)
    for epoch in range(1, args.epochs + 1):
        w = train(w, dtrn, args.lr)
        print("epoch %d  test loss %.4f  test accuracy %.4f" % (epoch, *evaluate(predict, loss, w, dtst)))


if __name__ == "__main__":
    main()
