"""Optimizers with Knet's names, defaults and update rules, over pytrees of parameters.

    opt = kn.optim.Adam()
    for x, y in data:
        params = opt.update(params, kn.grad(loss)(params, x, y))

``opt.update(params, grads)`` takes parameters and gradients of the same pytree structure (any
nesting of list, tuple and dict; leaves are real floating arrays of a registered backend or
Python floats) and returns the updated parameters in that structure:

- in place where the backend allows it: arrays of the backends in :data:`IN_PLACE_BACKENDS`
  (numpy, torch, cupy) are overwritten (``w[...] = new``) and returned, so other references to
  them see the update; numpy scalars and Python floats are returned as new values;
- functionally elsewhere: other backends get new arrays and their inputs are left alone.
  array-api-strict takes this path on purpose: it stands in for libraries whose arrays are
  immutable (JAX), so the functional path runs on the standard's reference implementation.
  A backend module may declare ``IN_PLACE_UPDATES = True`` (or False) to choose.

Every optimizer also takes

- ``gclip``: when the L2 norm of all gradients together (the whole pytree) is ``> gclip > 0``,
  each gradient is scaled by ``gclip / norm``. Knet clips each array by its own norm; the global
  norm is ``torch.nn.utils.clip_grad_norm_``'s, which divides by ``norm + 1e-6``: we do not add
  1e-6, so the clipped gradient's norm is exactly ``gclip``.
- ``weight_decay``: L2 regularization as torch.optim's: the clipped gradient becomes
  ``g + weight_decay * w`` before the update rule runs.

State (velocities, moment estimates, step counts) lives in ``opt.state``, a dict from each
parameter's path (``params['layer1'][0]``) to that parameter's buffers, so one optimizer serves
one model; a parameter whose shape, dtype or backend changes between updates is refused.
The rules use only functions of the Array API standard on the parameters' raw namespace, with
Python-float hyperparameters, so float32 parameters and state stay float32.

Bad input raises before any parameter changes: gradients whose structure or shapes differ from
the parameters' (the path and both sides are named), and invalid hyperparameters.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

from .. import registry
from ..pytree import enter, is_namedtuple, map_with_path
from ..traced import Traced

IN_PLACE_BACKENDS = frozenset({"numpy", "torch", "cupy"})


def updates_in_place(backend: registry.Backend) -> bool:
    """Whether :meth:`Optimizer.update` writes into ``backend``'s arrays: the backend module's
    ``IN_PLACE_UPDATES`` if it declares one, else whether it is in :data:`IN_PLACE_BACKENDS`."""
    return bool(getattr(backend.module, "IN_PLACE_UPDATES", backend.name in IN_PLACE_BACKENDS))


class _Leaf:
    """One parameter and its gradient, checked, on the parameter's raw namespace ``xp``.

    ``write``: "in place" (overwrite ``w``), "new" (return the new array), "float" (a Python
    float parameter, computed as a 0-d float64 numpy array and returned as a float)."""

    __slots__ = ("path", "xp", "w", "g", "write", "layout")

    def __init__(self, path: str, xp: Any, w: Any, g: Any, write: str, layout: tuple):
        self.path, self.xp, self.w, self.g, self.write, self.layout = path, xp, w, g, write, layout


class Optimizer:
    """The common part of all optimizers: checking, gradient clipping, weight decay, the pytree
    walk and the write-back. A subclass gives its update rule as ``_step(xp, state, w, g)``, which
    returns the new value of ``w`` and may keep buffers in ``state`` (a dict for that parameter)."""

    def __init__(self, lr: float, *, gclip: float = 0.0, weight_decay: float = 0.0):
        self.lr = self._hyperparameter("lr", lr)
        self.gclip = self._hyperparameter("gclip", gclip)
        self.weight_decay = self._hyperparameter("weight_decay", weight_decay)
        self.state: dict[str, dict[str, Any]] = {}
        self._layouts: dict[str, tuple] = {}

    def __repr__(self) -> str:
        names = inspect.signature(type(self)).parameters
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    def _hyperparameter(self, name: str, value: Any, high: float = math.inf,
                        high_open: bool = False) -> float:
        """``value`` as a float, checked to be finite and in ``[0, high]`` (``[0, high)``)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: {name} must be a real number, got "
                            f"{registry.describe(value)}")
        value = float(value)
        inside = value < high if high_open else value <= high
        if not (math.isfinite(value) and value >= 0 and inside):
            bound = "" if high == math.inf else f" and {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"{type(self).__name__}: {name} must be >= 0{bound}, got {value}")
        return value

    def update(self, params: Any, grads: Any) -> Any:
        """Apply one step of the update rule to every parameter; the updated parameters, in the
        structure of ``params`` (see the module docstring for in-place and functional updates)."""
        pairs: list[tuple[str, Any, Any]] = []
        _match(params, grads, "params", pairs, {})
        leaves = [self._leaf(path, w, g) for path, w, g in pairs]
        self._layouts.update((leaf.path, leaf.layout) for leaf in leaves)
        scale = self._clip_scale(leaves)
        new = {leaf.path: self._apply(leaf, scale) for leaf in leaves}
        return map_with_path(lambda path, _: new[path], params, "params")

    def _leaf(self, path: str, w: Any, g: Any) -> _Leaf:
        if type(w) is Traced or type(g) is Traced:
            raise TypeError(f"update: {path} is a traced value; call update outside grad")
        if type(w) is float:
            if isinstance(g, bool) or not isinstance(g, numbers.Real):
                raise TypeError(f"update: {path} is a Python float but its gradient is a "
                                f"{registry.describe(g)}")
            xp = registry.default_backend().ns
            leaf = _Leaf(path, xp, xp.asarray(w, dtype=xp.float64), xp.asarray(float(g), dtype=xp.float64),
                         "float", ("Python float", (), "float64"))
        else:
            backend = registry.owner(type(w))
            if backend is None:
                raise TypeError(f"update: {path} is a {registry.describe(w)}; parameters must be "
                                f"floating arrays of a registered backend "
                                f"({', '.join(sorted(registry.backends()))}) or Python floats")
            xp = backend.ns
            if not xp.isdtype(w.dtype, "real floating"):
                raise TypeError(f"update: {path} has dtype {w.dtype}; only real floating "
                                f"parameters can be optimized")
            if registry.owner(type(g)) is not backend:
                raise TypeError(f"update: {path} is a {backend.name} array but its gradient is a "
                                f"{registry.describe(g)}")
            if tuple(g.shape) != tuple(w.shape):
                raise ValueError(f"update: the gradient at {path} has shape {tuple(g.shape)} but the "
                                 f"parameter has shape {tuple(w.shape)}")
            if g.dtype != w.dtype:
                raise TypeError(f"update: the gradient at {path} has dtype {g.dtype} but the "
                                f"parameter has dtype {w.dtype}")
            in_place = updates_in_place(backend) and hasattr(type(w), "__setitem__")
            leaf = _Leaf(path, xp, w, g, "in place" if in_place else "new",
                         (f"{backend.name} array", tuple(w.shape), str(w.dtype)))
        known = self._layouts.get(path, leaf.layout)
        if known != leaf.layout:
            raise ValueError(f"update: {path} was a {known[0]} of shape {known[1]} and dtype {known[2]} "
                             f"in earlier updates and is now a {leaf.layout[0]} of shape "
                             f"{leaf.layout[1]} and dtype {leaf.layout[2]}; use a new optimizer "
                             f"for a different model")
        return leaf

    def _clip_scale(self, leaves: list[_Leaf]) -> float:
        """The factor that brings the global gradient norm down to ``gclip`` (1 if not above)."""
        if self.gclip == 0:
            return 1.0
        norm = math.sqrt(sum(float(leaf.xp.sum(leaf.g * leaf.g)) for leaf in leaves))
        return self.gclip / norm if norm > self.gclip else 1.0

    def _apply(self, leaf: _Leaf, scale: float) -> Any:
        g = leaf.g if scale == 1.0 else leaf.g * scale
        if self.weight_decay:
            g = g + self.weight_decay * leaf.w
        new = self._step(leaf.xp, self.state.setdefault(leaf.path, {}), leaf.w, g)
        if leaf.write == "in place":
            leaf.w[...] = new
            return leaf.w
        return float(new) if leaf.write == "float" else new

    def _step(self, xp: Any, state: dict[str, Any], w: Any, g: Any) -> Any:
        raise NotImplementedError


def _structure(x: Any) -> str:
    if isinstance(x, dict):
        return f"a {type(x).__name__} with keys {list(x)}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    return f"a leaf ({registry.describe(x)})"


def _match(params: Any, grads: Any, path: str, out: list, ancestors: dict[int, str]) -> None:
    """Append ``(path, parameter, gradient)`` for each leaf of ``params`` to ``out`` (in
    knetapi.pytree.map_with_path order); ValueError where the structures differ, or for a cyclic
    or too deep ``params`` (``ancestors``: the containers above it, see knetapi.pytree.enter)."""
    if isinstance(params, dict):
        same = isinstance(grads, dict) and grads.keys() == params.keys()
    elif isinstance(params, (list, tuple)):
        same = isinstance(grads, (list, tuple)) and len(grads) == len(params)
    else:
        same = not isinstance(grads, (dict, list, tuple))
    if not same:
        raise ValueError(f"update: grads do not have the structure of params at {path}: params has "
                         f"{_structure(params)}, grads has {_structure(grads)}")
    if isinstance(params, (dict, list, tuple)):
        ancestors = enter(params, path, ancestors)
    if isinstance(params, dict):
        for k, v in params.items():
            _match(v, grads[k], f"{path}[{k!r}]", out, ancestors)
    elif is_namedtuple(params):
        for field, v, g in zip(params._fields, params, grads):
            _match(v, g, f"{path}.{field}", out, ancestors)
    elif isinstance(params, (list, tuple)):
        for i, (v, g) in enumerate(zip(params, grads)):
            _match(v, g, f"{path}[{i}]", out, ancestors)
    else:
        out.append((path, params, grads))


class SGD(Optimizer):
    """Stochastic gradient descent::

        w ← w − lr·g
    """

    def __init__(self, lr: float = 0.1, *, gclip: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)

    def _step(self, xp, state, w, g):
        return w - self.lr * g


class Momentum(Optimizer):
    """Gradient descent with momentum (Qian 1999), velocity ``v`` starting at 0::

        v ← gamma·v + lr·g
        w ← w − v

    Knet's convention puts ``lr`` inside the velocity. ``torch.optim.SGD(momentum=gamma,
    dampening=0)`` keeps ``b ← gamma·b + g`` and ``w ← w − lr·b``: the same steps (``v = lr·b``)
    while ``lr`` is constant; after ``lr`` changes, Knet's velocity still carries the old rate.
    """

    def __init__(self, lr: float = 0.001, *, gamma: float = 0.9, gclip: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.gamma = self._hyperparameter("gamma", gamma, 1.0)

    def _step(self, xp, state, w, g):
        state["v"] = self.lr * g if not state else self.gamma * state["v"] + self.lr * g
        return w - state["v"]


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient, velocity ``v`` starting at 0::

        v ← gamma·v + lr·g
        w ← w − (gamma·v + lr·g)

    This is Knet's rule (Bengio et al. 2013, eq. 7: ``w ← w + gamma·v_old − (1 + gamma)·v``,
    rearranged). ``torch.optim.SGD(momentum=gamma, nesterov=True)`` computes the same steps
    (``v = lr·b``) while ``lr`` is constant, as for :class:`Momentum`.
    """

    def __init__(self, lr: float = 0.001, *, gamma: float = 0.9, gclip: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.gamma = self._hyperparameter("gamma", gamma, 1.0)

    def _step(self, xp, state, w, g):
        step = self.lr * g
        state["v"] = step if not state else self.gamma * state["v"] + step
        return w - (self.gamma * state["v"] + step)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), ``G`` the sum of squared gradients starting at 0::

        G ← G + g²
        w ← w − lr·g / sqrt(G + eps)

    Knet puts ``eps`` inside the square root; ``torch.optim.Adagrad`` divides by
    ``sqrt(G) + eps``. Knet's rule is torch's with ``initial_accumulator_value=eps, eps=0``.
    """

    def __init__(self, lr: float = 0.1, *, eps: float = 1e-6, gclip: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.eps = self._hyperparameter("eps", eps)

    def _step(self, xp, state, w, g):
        state["G"] = g * g if not state else state["G"] + g * g
        return w - self.lr * g / xp.sqrt(state["G"] + self.eps)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), ``G`` and ``D`` running averages of squared gradients and squared
    updates, both starting at 0::

        G ← rho·G + (1 − rho)·g²
        u ← g·sqrt(D + eps) / sqrt(G + eps)
        D ← rho·D + (1 − rho)·u²
        w ← w − lr·u

    The same rule as ``torch.optim.Adadelta(lr=lr, rho=rho, eps=eps)``.
    """

    def __init__(self, lr: float = 1.0, *, rho: float = 0.9, eps: float = 1e-6, gclip: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.rho = self._hyperparameter("rho", rho, 1.0)
        self.eps = self._hyperparameter("eps", eps)

    def _step(self, xp, state, w, g):
        if not state:
            state.update(G=xp.zeros_like(w), D=xp.zeros_like(w))
        state["G"] = self.rho * state["G"] + (1 - self.rho) * (g * g)
        u = g * xp.sqrt(state["D"] + self.eps) / xp.sqrt(state["G"] + self.eps)
        state["D"] = self.rho * state["D"] + (1 - self.rho) * (u * u)
        return w - self.lr * u


class RMSprop(Optimizer):
    """RMSprop (Tieleman and Hinton 2012), ``G`` a running average of squared gradients from 0::

        G ← rho·G + (1 − rho)·g²
        w ← w − lr·g / sqrt(G + eps)

    Knet puts ``eps`` inside the square root; ``torch.optim.RMSprop(alpha=rho)`` divides by
    ``sqrt(G) + eps``. The two agree for ``eps = 0``.
    """

    def __init__(self, lr: float = 0.001, *, rho: float = 0.9, eps: float = 1e-6, gclip: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.rho = self._hyperparameter("rho", rho, 1.0)
        self.eps = self._hyperparameter("eps", eps)

    def _step(self, xp, state, w, g):
        if not state:
            state["G"] = xp.zeros_like(w)
        state["G"] = self.rho * state["G"] + (1 - self.rho) * (g * g)
        return w - self.lr * g / xp.sqrt(state["G"] + self.eps)


class Adam(Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction; ``m``, ``v`` start at 0 and ``t`` counts
    this parameter's updates::

        t ← t + 1
        m ← beta1·m + (1 − beta1)·g
        v ← beta2·v + (1 − beta2)·g²
        w ← w − lr·m̂ / (sqrt(v̂) + eps),   m̂ = m / (1 − beta1^t),  v̂ = v / (1 − beta2^t)

    The same rule as ``torch.optim.Adam(lr=lr, betas=(beta1, beta2), eps=eps)``.
    """

    def __init__(self, lr: float = 0.001, *, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, gclip: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr, gclip=gclip, weight_decay=weight_decay)
        self.beta1 = self._hyperparameter("beta1", beta1, 1.0, high_open=True)
        self.beta2 = self._hyperparameter("beta2", beta2, 1.0, high_open=True)
        self.eps = self._hyperparameter("eps", eps)

    def _step(self, xp, state, w, g):
        if not state:
            state.update(t=0, m=xp.zeros_like(w), v=xp.zeros_like(w))
        state["t"] += 1
        state["m"] = self.beta1 * state["m"] + (1 - self.beta1) * g
        state["v"] = self.beta2 * state["v"] + (1 - self.beta2) * (g * g)
        m_hat = state["m"] / (1 - self.beta1 ** state["t"])
        v_hat = state["v"] / (1 - self.beta2 ** state["t"])
        return w - self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)
