"""The torch backend: torch tensors (CPU, and CUDA where available) recorded on knetapi's tape.

Our rules compute the gradients, not ``torch.autograd``. A tensor that already requires grad is
used by value (detached, with one warning). Overrides: scatter-add through ``index_add_``, which
accumulates repeated indices; indexing with negative-step slices, which torch refuses (it has
no negative strides), through ``flip``; ``logsumexp`` through ``torch.logsumexp``.
"""

from __future__ import annotations

import warnings

import array_api_compat.torch as compat_torch
import numpy as np
import torch

from knetapi.scatter import is_basic_key

NAME = "torch"
ARRAY_TYPES = (torch.Tensor,)


def namespace():
    return compat_torch


def _dims_taken(part) -> int:
    if part is None:
        return 0
    if isinstance(part, torch.Tensor) and part.dtype == torch.bool:
        return part.ndim
    return 1


def positive_steps(shape: tuple, key) -> tuple[list[int], tuple]:
    """``(dims, key2)`` such that ``x.flip(dims)[key2]`` is ``x[key]`` and ``key2`` has no
    negative-step slice (a slice ``s`` of a dim of size ``n`` becomes its mirror image)."""
    parts = key if isinstance(key, tuple) else (key,)
    explicit = sum(_dims_taken(p) for p in parts if p is not Ellipsis)
    dim, flips, out = 0, [], []
    for p in parts:
        if p is Ellipsis:
            dim += len(shape) - explicit
        elif isinstance(p, slice) and p.step is not None and p.step < 0:
            n = shape[dim]
            start, stop, step = p.indices(n)
            count = len(range(start, stop, step))
            first = n - 1 - start if count else 0
            p = slice(first, first + count * -step, -step)
            flips.append(dim)
        out.append(p)
        if p is not Ellipsis:
            dim += _dims_taken(p)
    return flips, tuple(out)


def getitem(x: torch.Tensor, *, key) -> torch.Tensor:
    flips, key = positive_steps(tuple(x.shape), key)
    return (x.flip(flips) if flips else x)[key]


def scatter_add(out: torch.Tensor, key, values) -> torch.Tensor:
    """``out[key] += values`` with repeated indices accumulating; may write into ``out``."""
    flips, key = positive_steps(tuple(out.shape), key)
    if is_basic_key(key):
        target = out.flip(flips) if flips else out
        target[key] += values
        return target.flip(flips) if flips else target
    if not out.is_contiguous():          # zeros_like keeps a transposed value's strides
        out = out.contiguous()
    positions = torch.arange(out.numel(), device=out.device).reshape(out.shape)
    positions = (positions.flip(flips) if flips else positions)[key]
    out.view(-1).index_add_(0, positions.reshape(-1), torch.broadcast_to(values, positions.shape).reshape(-1))
    return out


def logsumexp(x: torch.Tensor, *, axis=None, keepdims=False) -> torch.Tensor:
    """torch's own (fused) logsumexp: -inf for an empty or all -inf group, like the generic one."""
    dims = tuple(range(x.ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if not dims:                                   # nothing reduced (a 0-d x, or axis=())
        return x.clone()
    return torch.logsumexp(x, dim=dims, keepdim=keepdims)


def parameter_value(x: torch.Tensor) -> torch.Tensor:
    """A parameter as knetapi differentiates it: by value, outside torch.autograd."""
    if x.requires_grad:
        warnings.warn("knetapi: a torch tensor with requires_grad=True was passed to grad; knetapi "
                      "uses it by value (detached) and computes gradients with its own rules",
                      stacklevel=2)
        return x.detach()
    return x


def to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


OVERRIDES = {"scatter_add": scatter_add, "getitem": getitem, "logsumexp": logsumexp}
