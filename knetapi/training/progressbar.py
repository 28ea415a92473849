"""``progress``: a progress bar (tqdm) over an iterable, showing the running loss and the speed.

The bar is drawn on standard error only when it is a terminal: in scripts whose output goes to a
file, in CI and under pytest, ``progress`` prints nothing and does not need tqdm. The loss comes from
:meth:`Progress.record`, which :func:`knetapi.train` calls after each step when its data is wrapped
in ``progress`` (a loop of one's own calls it too: ``bar.record(loss)``).
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator

from .. import registry

SMOOTHING = 0.9   # weight of the past in the running loss (an exponential moving average)


class Progress:
    """An iterable that yields the items of ``iterable`` while drawing a bar; made by :func:`progress`.

    Each ``iter()`` is one pass with its own bar (labelled ``epoch k`` when the iterable can be
    iterated again). ``loss`` is the running loss: an exponential moving average of the recorded
    losses with weight ``SMOOTHING`` on the past, bias-corrected so early values are not pulled to 0.
    """

    def __init__(self, iterable: Iterable, every: float):
        self.iterable = iterable
        self.every = every
        self.passes = 0
        self.steps = 0
        self._labelled = iter(iterable) is not iterable     # re-iterable: one bar per epoch
        self._average = 0.0

    @property
    def loss(self) -> float | None:
        """The running loss, or None before any loss was recorded."""
        if self.steps == 0:
            return None
        return self._average / (1 - SMOOTHING ** self.steps)

    def record(self, loss: Any) -> None:
        """Add ``loss`` (a number or a scalar array) to the running loss shown on the bar."""
        self.steps += 1
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * float(loss)

    def __len__(self) -> int:
        return len(self.iterable)

    def __iter__(self) -> Iterator[Any]:
        self.passes += 1
        if not _stderr_is_terminal():
            yield from self.iterable
            return
        bar = _tqdm()(total=len(self.iterable) if hasattr(self.iterable, "__len__") else None,
                      desc=f"epoch {self.passes}" if self._labelled else None,
                      mininterval=self.every, file=sys.stderr, dynamic_ncols=True)
        try:
            for item in self.iterable:
                yield item
                if self.steps:
                    bar.set_postfix_str(f"loss={self.loss:.4g}", refresh=False)
                bar.update(1)
        finally:
            bar.close()

    def __repr__(self) -> str:
        return f"<progress over {self.iterable!r}>"


def progress(iterable: Iterable, *, every: float = 0.5) -> Progress:
    """``iterable``'s items, with a progress bar on standard error redrawn at most every ``every``
    seconds: count, items per second, and the running loss (when the items are numbers, or when
    :func:`knetapi.train` records its losses: ``kn.train(loss, w, kn.progress(data), opt)``).
    Quiet, with no output at all, when standard error is not a terminal. Drawing needs ``tqdm``."""
    if not hasattr(iterable, "__iter__"):
        raise TypeError(f"progress: iterable must be iterable, got {registry.describe(iterable)}")
    if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
        raise ValueError(f"progress: every must be a positive number of seconds, got {every!r}")
    return Progress(iterable, float(every))


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):    # replaced by an object without isatty, or closed
        return False


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        raise ImportError("kn.progress draws its bar with tqdm, which is not installed: "
                          "pip install tqdm (it is quiet without tqdm only when standard error "
                          "is not a terminal)") from None
    return tqdm
