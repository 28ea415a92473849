"""The torch backend: torch tensors (CPU, and CUDA where available) recorded on knetapi's tape.

Our rules compute the gradients, not ``torch.autograd``. A tensor that already requires grad is
used by value (detached, with one warning). Overrides: scatter-add through ``index_add_``, which
accumulates repeated indices.
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


def scatter_add(out: torch.Tensor, key, values) -> torch.Tensor:
    """``out[key] += values`` with repeated indices accumulating, in place."""
    if is_basic_key(key):
        out[key] += values
        return out
    positions = torch.arange(out.numel(), device=out.device).reshape(out.shape)[key]
    out.view(-1).index_add_(0, positions.reshape(-1), torch.broadcast_to(values, positions.shape).reshape(-1))
    return out


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


OVERRIDES = {"scatter_add": scatter_add}
