"""``train``: the training loop (Knet's ``train!`` / ``minimize``): gradient, optimizer step, repeat."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .. import registry
from ..differentiate import value_and_grad
from .progressbar import Progress


def train(loss: Callable, params: Any, data: Iterable, optimizer: Any, epochs: int = 1,
          callback: Callable[[int, float, Any], Any] | None = None) -> tuple[Any, list[float]]:
    """Minimize ``loss`` over ``data``; returns ``(params, history)``.

    For each of ``epochs`` passes over ``data``, for each batch: ``value, g =
    kn.value_and_grad(loss)(params, *batch)``, then ``params = optimizer.update(params, g)``. A batch
    that is a tuple is spread over ``loss``'s arguments after ``params`` (``(x, y)`` batches of
    :func:`knetapi.minibatch` call ``loss(params, x, y)``); any other batch is passed as one argument.
    ``history`` is the list of the losses (Python floats), one per step, each computed before its
    step's update. After each step ``callback(step, value, params)`` is called (``step`` counts
    from 1, ``params`` are the updated ones); returning a true value stops training there. Data wrapped in
    :func:`knetapi.progress` shows the running loss on its bar.

    ``optimizer`` is anything with ``update(params, grads) -> params`` (the ``kn.optim`` classes).
    The returned ``params`` are the last ones the optimizer returned, which may be the very objects
    passed in, updated in place.
    """
    if not callable(loss):
        raise TypeError(f"train: loss must be a function, got {registry.describe(loss)}")
    if not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"train: optimizer must have an update(params, grads) method, like the "
                        f"kn.optim classes; got {registry.describe(optimizer)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"train: epochs must be an int >= 0, got {epochs!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"train: callback must be a function or None, got {registry.describe(callback)}")
    if not hasattr(data, "__iter__"):
        raise TypeError(f"train: data must be an iterable of batches, got {registry.describe(data)}")
    if epochs > 1 and iter(data) is data:
        raise ValueError("train: data is a one-shot iterator, so epochs after the first would see no "
                         "batches; pass a re-iterable such as kn.minibatch(x, y, n) or a list")
    step_value_and_grad = value_and_grad(loss)
    history: list[float] = []
    for _ in range(epochs):
        for batch in data:
            value, g = step_value_and_grad(params, *batch) if isinstance(batch, tuple) \
                else step_value_and_grad(params, batch)
            params = optimizer.update(params, g)
            history.append(float(value))
            if isinstance(data, Progress):
                data.record(history[-1])
            if callback is not None and callback(len(history), history[-1], params):
                return params, history
    return params, history
