"""The benchmark's five models in HIPS autograd: the knetapi examples' functions written with
``autograd.numpy``, differentiated by ``autograd.grad``, trained by the same SGD step."""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import grad
from autograd.core import make_vjp
from autograd.scipy.signal import convolve
from autograd.scipy.special import logsumexp

NAME = "HIPS autograd"


def nll(scores, labels):
    logp = scores - logsumexp(scores, axis=1, keepdims=True)
    return -anp.mean(logp[anp.arange(labels.shape[0]), labels])


def relu(x):
    """max(x, 0) with derivative 0 at 0, as knetapi, torch and JAX (autograd's maximum gives 0.5
    there, and Fashion-MNIST's zero background meets the kink exactly)."""
    return x * (x > 0)


def linreg(w, x, y):
    return anp.mean((anp.dot(x, w[0]) + w[1] - y) ** 2)


def softmax(w, x, y):
    return nll(anp.dot(x.reshape(x.shape[0], -1), w[0]) + w[1], y)


def mlp(w, x, y):
    x = x.reshape(x.shape[0], -1)
    for i in range(0, len(w) - 2, 2):
        x = relu(anp.dot(x, w[i]) + w[i + 1])
    return nll(anp.dot(x, w[-2]) + w[-1], y)


def conv(w, x):
    """Cross-correlation of x (N, C, H, W) with w (O, C, kh, kw): autograd's convolve (which flips
    the kernel, like scipy's) of the flipped kernel."""
    return convolve(x, w[:, :, ::-1, ::-1], axes=([2, 3], [2, 3]), dot_axes=([1], [1]), mode="valid")


def pool(x):
    n, c, h, w = x.shape
    return anp.max(x.reshape(n, c, h // 2, 2, w // 2, 2), axis=(3, 5))


def lenet(w, x, y):
    for i in (0, 2):
        x = pool(relu(conv(w[i], x) + w[i + 1]))
    x = relu(anp.dot(x.reshape(x.shape[0], -1), w[4]) + w[5])
    return nll(anp.dot(x, w[6]) + w[7], y)


def sigm(x):
    return 0.5 * (anp.tanh(0.5 * x) + 1.0)


def lstm(weight, bias, hidden, cell, input):
    gates = anp.dot(anp.concatenate([input, hidden], axis=1), weight) + bias
    h = hidden.shape[1]
    forget = sigm(gates[:, 0:h])
    ingate = sigm(gates[:, h:2 * h])
    outgate = sigm(gates[:, 2 * h:3 * h])
    change = anp.tanh(gates[:, 3 * h:4 * h])
    cell = cell * forget + ingate * change
    hidden = outgate * anp.tanh(cell)
    return hidden, cell


def charlm(w, sequences):
    hidden = cell = np.zeros((sequences.shape[0], w["weight"].shape[1] // 4), np.float32)
    total = 0.0
    steps = sequences.shape[1] - 1
    for t in range(steps):
        hidden, cell = lstm(w["weight"], w["bias"], hidden, cell, w["embedding"][sequences[:, t]])
        total = total + nll(anp.dot(hidden, w["softmax_w"]) + w["softmax_b"], sequences[:, t + 1])
    return total / steps


LOSSES = {"linreg": linreg, "softmax": softmax, "mlp": mlp, "lenet": lenet, "charlm": charlm}
GRADIENTS = {model: grad(loss) for model, loss in LOSSES.items()}


def asarrays(tree):
    """autograd computes on numpy arrays: a copy, so that runs do not share parameters."""
    if isinstance(tree, dict):
        return {k: asarrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(asarrays(v) for v in tree)
    return np.array(tree)


tonumpy = asarrays


def train(model, w, data, lr):
    """SGD over the batches of ``data`` (tuples of loss arguments after ``w``); returns the new ``w``."""
    lossgradient = GRADIENTS[model]
    for batch in data:
        g = lossgradient(w, *batch)
        w = {k: w[k] - lr * g[k] for k in w} if isinstance(w, dict) else \
            [wi - lr * gi for wi, gi in zip(w, g)]
    return w


def forward(model, w, batch, record):
    """The loss, computed on plain numpy arrays or, with ``record``, traced by autograd (the
    forward pass that grad runs before backprop)."""
    if record:
        return make_vjp(lambda w: LOSSES[model](w, *batch), w)[1]
    return LOSSES[model](w, *batch)


def gradient(model, w, batch):
    return GRADIENTS[model](w, *batch)
