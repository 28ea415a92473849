"""The benchmark's five models in PyTorch, eager mode: the knetapi examples' functions written with
torch operations, differentiated by ``torch.autograd``, trained by the same SGD step."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NAME = "PyTorch eager"


def linreg(w, x, y):
    return torch.mean((x @ w[0] + w[1] - y) ** 2)


def softmax(w, x, y):
    return F.cross_entropy(x.flatten(1) @ w[0] + w[1], y)


def mlp(w, x, y):
    x = x.flatten(1)
    for i in range(0, len(w) - 2, 2):
        x = torch.relu(x @ w[i] + w[i + 1])
    return F.cross_entropy(x @ w[-2] + w[-1], y)


def lenet(w, x, y):
    for i in (0, 2):
        x = F.max_pool2d(torch.relu(F.conv2d(x, w[i]) + w[i + 1]), 2)
    x = torch.relu(x.flatten(1) @ w[4] + w[5])
    return F.cross_entropy(x @ w[6] + w[7], y)


def lstm(weight, bias, hidden, cell, input):
    gates = torch.cat([input, hidden], dim=1) @ weight + bias
    h = hidden.shape[1]
    forget = torch.sigmoid(gates[:, 0:h])
    ingate = torch.sigmoid(gates[:, h:2 * h])
    outgate = torch.sigmoid(gates[:, 2 * h:3 * h])
    change = torch.tanh(gates[:, 3 * h:4 * h])
    cell = cell * forget + ingate * change
    hidden = outgate * torch.tanh(cell)
    return hidden, cell


def charlm(w, sequences):
    hidden = cell = torch.zeros(sequences.shape[0], w["weight"].shape[1] // 4)
    total = 0.0
    steps = sequences.shape[1] - 1
    for t in range(steps):
        hidden, cell = lstm(w["weight"], w["bias"], hidden, cell, w["embedding"][sequences[:, t]])
        total = total + F.cross_entropy(hidden @ w["softmax_w"] + w["softmax_b"], sequences[:, t + 1])
    return total / steps


LOSSES = {"linreg": linreg, "softmax": softmax, "mlp": mlp, "lenet": lenet, "charlm": charlm}


def _leaves(w):
    return list(w.values()) if isinstance(w, dict) else list(w)


def asarrays(tree):
    """numpy arrays (a list, dict or tuple of them) as torch tensors."""
    if isinstance(tree, dict):
        return {k: asarrays(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(asarrays(v) for v in tree)
    return torch.from_numpy(np.array(tree))


def tonumpy(tree):
    if isinstance(tree, dict):
        return {k: tonumpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tonumpy(v) for v in tree)
    return tree.detach().numpy()


def train(model, w, data, lr):
    """SGD over the batches of ``data`` (tuples of loss arguments after ``w``); updates ``w``'s
    tensors in place and returns ``w``."""
    loss = LOSSES[model]
    params = _leaves(w)
    for p in params:
        p.requires_grad_(True)
    for batch in data:
        grads = torch.autograd.grad(loss(w, *batch), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return w


def forward(model, w, batch, record):
    """The loss, computed without (``record=False``) or with recording for backprop."""
    with torch.set_grad_enabled(record):
        for p in _leaves(w):
            p.requires_grad_(record)
        return LOSSES[model](w, *batch)


def gradient(model, w, batch):
    grads = torch.autograd.grad(forward(model, w, batch, record=True), _leaves(w))
    return dict(zip(w, grads)) if isinstance(w, dict) else list(grads)
