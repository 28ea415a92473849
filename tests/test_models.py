"""The paper's first three models as plain Python over numpy arrays: the loss falls under SGD and
the gradients match finite differences. Conventions: batch-first rows, x is (N, features)."""

import numpy as np
import pytest

import knetapi as kn
from knetapi.testing import check_grads


def linreg_predict(w, x):
    return x @ w[0] + w[1]


def linreg_loss(w, x, y):
    return kn.mean((linreg_predict(w, x) - y) ** 2)


def softmax_predict(w, x):
    return x @ w[0] + w[1]


def cross_entropy(scores, labels):
    logp = scores - kn.logsumexp(scores, axis=1, keepdims=True)
    return -kn.mean(kn.take_along_axis(logp, labels[:, None], axis=1))


def softmax_loss(w, x, labels):
    return cross_entropy(softmax_predict(w, x), labels)


def mlp_predict(w, x):
    for i in range(0, len(w) - 2, 2):
        x = kn.maximum(x @ w[i] + w[i + 1], 0.0)
    return x @ w[-2] + w[-1]


def mlp_loss(w, x, labels):
    return cross_entropy(mlp_predict(w, x), labels)


def train(loss, w, data, lr, steps):
    """Plain SGD, as in the paper: ``w = w - lr * g`` for every parameter."""
    lossgradient = kn.grad(loss)
    history = []
    for _ in range(steps):
        history.append(float(loss(w, *data)))
        g = lossgradient(w, *data)
        w = [wi - lr * gi for wi, gi in zip(w, g)]
    history.append(float(loss(w, *data)))
    return w, history


def _classification(rng, n=64, features=8, classes=4):
    centres = rng.standard_normal((classes, features)) * 2
    labels = rng.integers(0, classes, n)
    x = centres[labels] + rng.standard_normal((n, features))
    return x, labels


def _linreg_setup(rng, dtype):
    x = rng.standard_normal((50, 5))
    y = x @ rng.standard_normal((5, 1)) + 0.1 * rng.standard_normal((50, 1))
    w = [0.1 * rng.standard_normal((5, 1)), np.zeros(1)]
    return linreg_loss, [a.astype(dtype) for a in w], (x.astype(dtype), y.astype(dtype)), 0.1


def _softmax_setup(rng, dtype):
    x, labels = _classification(rng)
    w = [0.1 * rng.standard_normal((8, 4)), np.zeros(4)]
    return softmax_loss, [a.astype(dtype) for a in w], (x.astype(dtype), labels), 0.5


def _mlp_setup(rng, dtype):
    x, labels = _classification(rng)
    w = [0.3 * rng.standard_normal((8, 16)), np.zeros(16), 0.3 * rng.standard_normal((16, 4)), np.zeros(4)]
    return mlp_loss, [a.astype(dtype) for a in w], (x.astype(dtype), labels), 0.3


SETUPS = {"linreg": _linreg_setup, "softmax": _softmax_setup, "mlp": _mlp_setup}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", sorted(SETUPS))
def test_training_lowers_the_loss(model, dtype):
    loss, w, data, lr = SETUPS[model](np.random.default_rng(7), dtype)
    w, history = train(loss, w, data, lr, steps=30)
    assert history[-1] < 0.5 * history[0], history
    assert all(wi.dtype == dtype for wi in w)


@pytest.mark.parametrize("model", sorted(SETUPS))
def test_model_gradients_match_finite_differences(model):
    loss, w, data, _ = SETUPS[model](np.random.default_rng(11), np.float64)
    check_grads(loss, (w, *data))


def test_mlp_hessian_vector_product_matches_finite_differences():
    loss, w, data, _ = SETUPS["mlp"](np.random.default_rng(3), np.float64)
    check_grads(loss, (w, *data), order=2)
