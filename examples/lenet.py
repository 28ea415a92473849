"""The Knet paper's LeNet convolutional network on MNIST-format images.

    python examples/lenet.py [--backend numpy|torch|cupy] [--epochs 1] [--batch 100] [--lr 0.1] [--seed 0]

conv 5x5, 20 channels -> relu -> max pool 2 -> conv 5x5, 50 channels -> relu -> max pool 2 ->
500 relu units -> 10 scores, trained with softmax cross-entropy. Images are NCHW, (N, 1, 28, 28);
convolution weights are (out, in, 5, 5) and their biases (1, out, 1, 1), broadcasting over
the batch and the pixels. Data as in softmax.py (``kn.data.mnist()``).
"""

from __future__ import annotations

import numpy as np

import knetapi as kn
from common import arguments, evaluate, on


def predict(w, x):
    """Class scores (N, 10)."""
    for i in (0, 2):                                   # the two convolutional layers
        x = kn.pool(kn.relu(kn.conv4(w[i], x) + w[i + 1]))
    x = kn.relu(kn.mat(x) @ w[4] + w[5])               # (N, 50 * 4 * 4) -> (N, 500)
    return x @ w[6] + w[7]


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
    """Xavier weights, zero biases."""
    rng = np.random.default_rng(seed)
    return [kn.init.xavier((20, 1, 5, 5), rng=rng), kn.init.zeros((1, 20, 1, 1)),
            kn.init.xavier((50, 20, 5, 5), rng=rng), kn.init.zeros((1, 50, 1, 1)),
            kn.init.xavier((800, 500), rng=rng), kn.init.zeros(500),
            kn.init.xavier((500, 10), rng=rng), kn.init.zeros(10)]


def main(argv=None):
    args = arguments(__doc__, argv, epochs=1, batch=100, lr=0.1)
    xtrn, ytrn, xtst, ytst = on(args.backend, kn.data.mnist())
    w = on(args.backend, init(args.seed))
    dtrn = kn.progress(kn.minibatch(xtrn, ytrn, args.batch, shuffle=True, rng=args.seed))
    dtst = kn.minibatch(xtst, ytst, 500, partial=True)
    for epoch in range(1, args.epochs + 1):
        w = train(w, dtrn, args.lr)
        print("epoch %d  test loss %.4f  test accuracy %.4f" % (epoch, *evaluate(predict, loss, w, dtst)))


if __name__ == "__main__":
    main()
