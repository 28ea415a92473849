"""The benchmark's five models in JAX: the knetapi examples' functions written with jax.numpy and
jax.lax, differentiated by ``jax.grad``; the whole training step (gradient and SGD update) is one
``jax.jit``-compiled function."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

NAME = "JAX (jit)"


def nll(scores, labels):
    logp = jax.nn.log_softmax(scores, axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def linreg(w, x, y):
    return jnp.mean((x @ w[0] + w[1] - y) ** 2)


def softmax(w, x, y):
    return nll(x.reshape(x.shape[0], -1) @ w[0] + w[1], y)


def mlp(w, x, y):
    x = x.reshape(x.shape[0], -1)
    for i in range(0, len(w) - 2, 2):
        x = jax.nn.relu(x @ w[i] + w[i + 1])
    return nll(x @ w[-2] + w[-1], y)


def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def lenet(w, x, y):
    for i in (0, 2):
        x = jax.lax.conv_general_dilated(x, w[i], (1, 1), "VALID",
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        x = pool(jax.nn.relu(x + w[i + 1]))
    x = jax.nn.relu(x.reshape(x.shape[0], -1) @ w[4] + w[5])
    return nll(x @ w[6] + w[7], y)


def lstm(weight, bias, hidden, cell, input):
    gates = jnp.concatenate([input, hidden], axis=1) @ weight + bias
    h = hidden.shape[1]
    forget = jax.nn.sigmoid(gates[:, 0:h])
    ingate = jax.nn.sigmoid(gates[:, h:2 * h])
    outgate = jax.nn.sigmoid(gates[:, 2 * h:3 * h])
    change = jnp.tanh(gates[:, 3 * h:4 * h])
    cell = cell * forget + ingate * change
    hidden = outgate * jnp.tanh(cell)
    return hidden, cell


def charlm(w, sequences):
    """The loop over time is ``jax.lax.scan``: a Python loop, unrolled by jit, compiles for a minute
    and its gradient runs in time quadratic in the sequence length (measured: 0.08 s for 10 steps,
    0.76 s for 30, 4.1 s for 60)."""
    zeros = jnp.zeros((sequences.shape[0], w["weight"].shape[1] // 4), jnp.float32)

    def step(state, chars):
        hidden, cell = lstm(w["weight"], w["bias"], *state, w["embedding"][chars[0]])
        return (hidden, cell), nll(hidden @ w["softmax_w"] + w["softmax_b"], chars[1])

    inputs_and_next = jnp.stack([sequences[:, :-1].T, sequences[:, 1:].T], axis=1)   # (T, 2, B)
    _, losses = jax.lax.scan(step, (zeros, zeros), inputs_and_next)
    return jnp.mean(losses)


LOSSES = {"linreg": linreg, "softmax": softmax, "mlp": mlp, "lenet": lenet, "charlm": charlm}
_compiled: dict = {}


def asarrays(tree):
    """numpy arrays (a list, dict or tuple of them) as JAX arrays (int64 labels become int32, as
    JAX computes without 64-bit types by default)."""
    return jax.tree.map(jnp.asarray, tree)


def tonumpy(tree):
    return jax.tree.map(np.asarray, tree)


def _jit(kind, model, make):
    key = (kind, model)
    if key not in _compiled:
        _compiled[key] = jax.jit(make(LOSSES[model]))
    return _compiled[key]


def train(model, w, data, lr):
    """SGD over the batches of ``data`` (tuples of loss arguments after ``w``), one compiled step
    per batch; returns the new ``w``."""
    step = _jit("step", model, lambda loss: lambda w, lr, *batch: jax.tree.map(
        lambda wi, gi: wi - lr * gi, w, jax.grad(loss)(w, *batch)))
    for batch in data:
        w = step(w, lr, *batch)
    return jax.block_until_ready(w)


def forward(model, w, batch, record):
    """The loss, compiled (``record`` makes no difference: JAX traces once, at compile time)."""
    return jax.block_until_ready(_jit("forward", model, lambda loss: loss)(w, *batch))


def gradient(model, w, batch):
    return jax.block_until_ready(_jit("gradient", model, jax.grad)(w, *batch))
