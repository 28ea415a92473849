"""The Knet paper's softmax classifier (multinomial logistic regression) on MNIST-format images.

    python examples/softmax.py [--backend numpy|torch|cupy] [--epochs 10] [--batch 100] [--lr 0.1] [--seed 0]

The images come from ``kn.data.mnist()``: Debian's Fashion-MNIST (``apt-get install
dataset-fashion-mnist``) unless ``$KNETAPI_DATA`` names a folder of MNIST files. Batch-first: ``x``
is (N, 1, 28, 28), flattened by ``kn.mat`` to (N, 784); ``w = [weights (784, 10), bias (10,)]``.
"""

from __future__ import annotations

import numpy as np

import knetapi as kn
from common import arguments, evaluate, on


def predict(w, x):
    """Class scores (N, 10): one linear layer on the flattened pixels."""
    return kn.mat(x) @ w[0] + w[1]


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


def init(seed):
    rng = np.random.default_rng(seed)
    return [kn.init.gaussian((784, 10), std=0.1, rng=rng), kn.init.zeros(10)]


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
