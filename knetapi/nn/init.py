"""Parameter initializers (Knet's ``xavier``, ``gaussian``), on any registered backend.

Random numbers are drawn on the host with a numpy ``Generator`` (the standard has no random
numbers) in float64, cast to the requested dtype and moved to the backend, so one seed gives the
same values on every backend and device. ``rng`` is a ``numpy.random.Generator`` (used and
advanced), an int seed, or None for fresh entropy.

``dtype`` is a name (``"float32"``, ``"float64"``), a dtype of the target backend
(``torch.float64``), or a numpy dtype (``kn.float32``), which is read by its name.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from .. import registry


def fans(shape: int | tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of this shape, in knetapi's row-major layout.

    - 2-d ``(in, out)``, used as ``x @ w``: ``fan_in = in``, ``fan_out = out`` (note: torch's
      ``Linear`` stores ``(out, in)``; the Glorot bound only needs the sum, which is the same).
    - ≥3-d convolution weights ``(O, C, kh, kw, ...)``: ``fan_in = C*kh*kw``, ``fan_out = O*kh*kw``.
    - 0-d and 1-d (biases): ``fan_in = fan_out = size`` (Knet's convention).
    """
    shape = _shape(shape, "fans")
    size = math.prod(shape)
    if len(shape) < 2:
        return size, size
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def xavier(shape: int | tuple[int, ...], *, dtype: Any = "float32", backend: str = "numpy",
           device: Any = None, rng: np.random.Generator | int | None = None) -> Any:
    """Glorot/Xavier uniform: U(-a, a) with ``a = sqrt(6 / (fan_in + fan_out))`` (see :func:`fans`).

    Knet's own ``xavier`` uses ``sqrt(2 / (fan_in + fan_out))``; this is the bound of Glorot and
    Bengio (2010), as torch's ``xavier_uniform_``."""
    target, dims, name = _target("xavier", shape, dtype, backend)
    fan_in, fan_out = fans(dims)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    host = _generator(rng, "xavier").uniform(-bound, bound, size=dims)
    return _to_backend(host, name, target, device)


def gaussian(shape: int | tuple[int, ...], *, std: float = 0.01, mean: float = 0.0,
             dtype: Any = "float32", backend: str = "numpy", device: Any = None,
             rng: np.random.Generator | int | None = None) -> Any:
    """Normal samples: ``mean + std * N(0, 1)`` (Knet's default ``std=0.01``)."""
    target, dims, name = _target("gaussian", shape, dtype, backend)
    if not _is_real(std) or not std >= 0 or not math.isfinite(std):
        raise ValueError(f"init.gaussian: std must be a finite number >= 0, got {std!r}")
    if not _is_real(mean) or not math.isfinite(mean):
        raise ValueError(f"init.gaussian: mean must be a finite number, got {mean!r}")
    host = mean + std * _generator(rng, "gaussian").standard_normal(dims)
    return _to_backend(host, name, target, device)


def zeros(shape: int | tuple[int, ...], *, dtype: Any = "float32", backend: str = "numpy",
          device: Any = None) -> Any:
    """An array of zeros (biases)."""
    target, dims, name = _target("zeros", shape, dtype, backend)
    return target.ns.zeros(dims, dtype=_floating(target, device)[name], device=device)


def ones(shape: int | tuple[int, ...], *, dtype: Any = "float32", backend: str = "numpy",
         device: Any = None) -> Any:
    """An array of ones (scales)."""
    target, dims, name = _target("ones", shape, dtype, backend)
    return target.ns.ones(dims, dtype=_floating(target, device)[name], device=device)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _shape(shape: Any, what: str) -> tuple[int, ...]:
    dims = (shape,) if not isinstance(shape, (tuple, list)) else tuple(shape)
    try:
        if any(isinstance(d, bool) for d in dims):
            raise TypeError
        dims = tuple(operator.index(d) for d in dims)
    except TypeError:
        raise TypeError(f"init.{what}: shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(d <= 0 for d in dims):
        raise ValueError(f"init.{what}: every dimension must be positive, got shape {dims}")
    return dims


def _target(what: str, shape: Any, dtype: Any,
            backend: str) -> tuple[registry.Backend, tuple[int, ...], str]:
    """Check the arguments shared by all initializers: the backend, the shape, the dtype's name."""
    dims = _shape(shape, what)
    if not isinstance(backend, str):
        raise TypeError(f"init.{what}: backend must be a backend name such as 'numpy' or 'torch', "
                        f"got {registry.describe(backend)}")
    try:
        target = registry.get_backend(backend)
    except ValueError as e:
        raise ValueError(f"init.{what}: {e}") from None
    return target, dims, _dtype_name(what, dtype, target)


def _floating(target: registry.Backend, device: Any = None) -> dict[str, Any]:
    """The backend's real floating dtypes by name (the standard's inspection API)."""
    return target.ns.__array_namespace_info__().dtypes(device=device, kind="real floating")


def _dtype_name(what: str, dtype: Any, target: registry.Backend) -> str:
    available = _floating(target)
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        name = np.dtype(dtype).name
    else:   # a dtype object of the target backend; never compared across libraries
        name = next((n for n, d in available.items() if type(d) is type(dtype) and d == dtype), str(dtype))
    if name not in available:
        raise TypeError(f"init.{what}: dtype must be a real floating dtype of the {target.name} backend "
                        f"({', '.join(available)}), got {dtype!r}")
    return name


def _generator(rng: Any, what: str) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"init.{what}: rng must be a numpy.random.Generator, an int seed or None, "
                    f"got {registry.describe(rng)}")


def _to_backend(host: np.ndarray, name: str, target: registry.Backend, device: Any) -> Any:
    return target.ns.asarray(host.astype(name), dtype=_floating(target, device)[name], device=device)
