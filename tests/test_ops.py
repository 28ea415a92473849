"""Deep-learning ops: values and gradients against torch (an independent reference) and finite
differences; the kink conventions; dropout; bad labels."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import knetapi as kn
from knetapi import nn as ops
from knetapi.testing import check_grads

TORCH_EQUIVALENTS = {
    "relu": torch.relu,
    "sigm": torch.sigmoid,
    "elu": torch.nn.functional.elu,
    "softplus": torch.nn.functional.softplus,
    "softmax": lambda t: torch.softmax(t, dim=-1),
    "logsoftmax": lambda t: torch.log_softmax(t, dim=-1),
    "mat": lambda t: t.reshape(t.shape[0], -1),
}


def _random(seed, shape, scale=3.0):
    return np.random.default_rng(seed).uniform(-scale, scale, shape)


@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENTS))
@given(shape=array_shapes(min_dims=1, max_dims=3, max_side=4), seed=st.integers(0, 2**32 - 1))
def test_op_value_and_gradient_match_torch(name, shape, seed):
    x = _random(seed, shape)
    x[np.abs(x) < 1e-3] = 0.5                          # keep off the kinks for the comparison
    w = np.random.default_rng(seed + 1).standard_normal(shape)
    op = getattr(ops, name)
    reference = torch.tensor(x, requires_grad=True)
    out = TORCH_EQUIVALENTS[name](reference)
    (expected,) = torch.autograd.grad((out * torch.tensor(w).reshape(out.shape)).sum(), reference)
    np.testing.assert_allclose(op(x), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = kn.grad(lambda x: kn.sum(op(x) * kn.reshape(w, op(x).shape)))(x)
    np.testing.assert_allclose(g, expected.numpy(), rtol=1e-10, atol=1e-14)
    check_grads(op, (x,), order=2)
    check_grads(op, (x.astype(np.float32),))


def test_kink_conventions():
    x = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(kn.grad(lambda x: kn.sum(ops.relu(x)))(x), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(kn.grad(lambda x: kn.sum(ops.elu(x)))(x), [np.exp(-1), 1.0, 1.0])


def test_activations_do_not_overflow():
    x = np.array([-1000.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(ops.sigm(x), [0.0, 1.0])
        np.testing.assert_array_equal(ops.softplus(x), [0.0, 1000.0])
        np.testing.assert_allclose(ops.logsoftmax(x), [-2000.0, 0.0])


@given(n=st.integers(1, 6), classes=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
       average=st.booleans())
def test_nll_matches_torch_cross_entropy(n, classes, seed, average):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, classes)) * 3
    labels = rng.integers(0, classes, n)
    reference = torch.tensor(scores, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(reference, torch.tensor(labels),
                                                 reduction="mean" if average else "sum")
    (expected_grad,) = torch.autograd.grad(expected, reference)
    np.testing.assert_allclose(ops.nll(scores, labels, average=average), expected.item(), rtol=1e-12)
    g = kn.grad(lambda s: ops.nll(s, labels, average=average))(scores)
    np.testing.assert_allclose(g, expected_grad.numpy(), rtol=1e-10, atol=1e-14)
    check_grads(lambda s: ops.nll(s, labels, average=average), (scores,), order=2)


def test_nll_and_accuracy_on_torch_tensors():
    # torch's Tensor.size is a method, not the element count: nll's mean must not use it
    rng = np.random.default_rng(0)
    scores, labels = rng.standard_normal((5, 3)).astype(np.float32), rng.integers(0, 3, 5)
    expected = ops.nll(scores, labels)
    t_scores, t_labels = torch.from_numpy(scores), torch.from_numpy(labels)
    np.testing.assert_allclose(float(ops.nll(t_scores, t_labels)), float(expected), rtol=1e-6)
    g = kn.grad(lambda s: ops.nll(s, t_labels))(t_scores)
    np.testing.assert_allclose(g.numpy(), kn.grad(lambda s: ops.nll(s, labels))(scores), rtol=1e-6)
    assert ops.accuracy(t_scores, t_labels) == ops.accuracy(scores, labels)


def test_nll_along_the_first_axis():
    rng = np.random.default_rng(0)
    scores, labels = rng.standard_normal((4, 3)), np.array([0, 3, 2])
    np.testing.assert_allclose(ops.nll(scores, labels, axis=0), ops.nll(scores.T, labels))


def test_bce_and_logistic_match_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(7) * 4
    y01 = rng.integers(0, 2, 7).astype(np.float64)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y01))
    np.testing.assert_allclose(ops.bce(x, y01), expected.item(), rtol=1e-12)
    np.testing.assert_allclose(ops.logistic(x, 2 * y01 - 1), expected.item(), rtol=1e-12)
    check_grads(lambda x: ops.bce(x, y01), (x,), order=2)
    check_grads(lambda x: ops.logistic(x, 2 * y01 - 1), (x,), order=2)


def test_accuracy():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert ops.accuracy(scores, np.array([1, 0, 0])) == pytest.approx(2 / 3)


def test_dropout_is_the_identity_outside_grad_and_when_p_is_zero():
    x = np.ones((3, 4))
    assert ops.dropout(x, 0.5) is x
    g = kn.grad(lambda x: kn.sum(ops.dropout(x, 0.0) * 2))(x)
    np.testing.assert_array_equal(g, 2 * x)


def test_dropout_inside_grad_drops_and_rescales_reproducibly():
    x = np.ones((200, 50), dtype=np.float32)
    kept = []

    def loss(x):
        y = ops.dropout(x, 0.25, rng=42)
        kept.append(y._value)
        return kn.sum(y)

    g = kn.grad(loss)(x)
    y = kept[0]
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)} and y.dtype == np.float32
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(g, y)                 # d/dx sum(x * mask) = mask
    kn.grad(loss)(x)
    np.testing.assert_array_equal(kept[1], y)          # same seed, same mask


def test_mat_flattens_all_but_the_batch_axis():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert ops.mat(x).shape == (2, 12)


def test_embedding_lookup_through_indexing():
    table = np.random.default_rng(1).standard_normal((5, 3))
    tokens = np.array([[0, 4], [4, 4]])
    g = kn.grad(lambda e: kn.sum(e[tokens] ** 2))(table)
    expected = np.zeros_like(table)
    np.add.at(expected, tokens, 2 * table[tokens])
    np.testing.assert_allclose(g, expected)


@pytest.mark.parametrize("labels, error, message", [
    (np.array([0, 1, 3]), ValueError, r"labels must lie in \[0, 3\).*from 0 to 3"),
    (np.array([0, -1, 2]), ValueError, r"labels must lie in \[0, 3\)"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "integer array of class indices.*float64"),
    (np.array([0, 1]), ValueError, r"labels of shape \(2,\) do not match scores of shape \(3, 3\)"),
])
def test_bad_labels(labels, error, message):
    with pytest.raises(error, match=message):
        ops.nll(np.zeros((3, 3)), labels)


@pytest.mark.parametrize("p", [-0.1, 1.0, 2.0])
def test_dropout_probability_out_of_range(p):
    with pytest.raises(ValueError, match=r"dropout: p must lie in \[0, 1\)"):
        ops.dropout(np.ones(3), p)
