"""``kn.debug``: find the op where a NaN or an infinity first appears, forward or backward.

Off by default. ``kn.debug(nan=True)`` turns it on (``kn.debug(nan=False)`` off; used in a
``with`` statement it restores the previous setting on exit), for the calling thread (and
asyncio task) only; the environment variable ``KNETAPI_DEBUG_NAN=1`` turns it on everywhere. While it is on, the tape notes where the user's code
called each recorded op (file, line, function) and checks

- forward: each recorded op's value,
- backward: each gradient a rule passes to an argument,

raising :class:`NonFiniteError` at the first NaN or infinity, naming the op, the pass, and the
user's line that called the op. When it is off the tape pays one attribute check per op.
"""

from __future__ import annotations

import contextvars
import linecache
import os
import sys
from pathlib import Path
from typing import Any

from .traced import strip

# Whether the checks are on, per thread (a context variable: each thread starts at the default).
checking = contextvars.ContextVar("knetapi_debug_nan",
                                  default=os.environ.get("KNETAPI_DEBUG_NAN", "") not in ("", "0"))
# Whether any thread may have them on: the tape reads this plain flag first, so that with the
# checks off (the usual case) an op costs one attribute read, not a context-variable lookup.
maybe_on: bool = checking.get()

# Frames in these folders are knetapi's own; the first frame outside them is the user's code.
_OWN_FOLDERS = tuple(str(p) + os.sep for p in {Path(__file__).parent,
                                               Path(__file__).parent / "backends"})


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity appeared in a recorded op's value or in a gradient (kn.debug)."""


class debug:
    """Turn the NaN/Inf checks on (``nan=True``) or off; as a context manager, for a block."""

    def __init__(self, nan: bool = True):
        global maybe_on
        maybe_on = maybe_on or bool(nan)
        self.previous = checking.set(bool(nan))

    def __enter__(self) -> "debug":
        return self

    def __exit__(self, *exc: Any) -> None:
        checking.reset(self.previous)


def user_site() -> tuple[str, int, str] | None:
    """(file, line, function) of the innermost frame outside knetapi: where the user called an op."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_FOLDERS):
        frame = frame.f_back
    if frame is None:
        return None
    return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name


def check_forward(node: Any, backend: Any) -> None:
    """Raise if ``node``'s value has a NaN or an infinity."""
    problem = _non_finite(node.value, backend)
    if problem:
        inputs = any(_non_finite(a, backend) for a in node.args)
        cause = " (an input was already non-finite)" if inputs else ""
        raise NonFiniteError(f"kn.debug: {node.prim.name} gave {problem} in the forward pass{cause}, "
                             f"{_where(node)}")


def check_backward(node: Any, position: int, gradient: Any, backend: Any) -> None:
    """Raise if the ``gradient`` that ``node``'s rule gives argument ``position`` is not finite."""
    values = getattr(gradient, "values", gradient)     # a sparse index cotangent: its values
    problem = _non_finite(values, backend)
    if problem:
        raise NonFiniteError(f"kn.debug: the gradient of {node.prim.name} for its argument "
                             f"{position} has {problem} in the backward pass; {node.prim.name} was "
                             f"called {_where(node)}")


def _non_finite(x: Any, backend: Any) -> str:
    """'NaN', 'an infinity' or '' for a floating-point array ``x`` (other values: '')."""
    x = strip(x)
    ns = backend.ns
    if not isinstance(x, backend.array_types):
        return ""
    if not ns.isdtype(x.dtype, "real floating"):
        return ""
    if bool(ns.any(ns.isnan(x))):
        return "NaN"
    return "an infinity" if bool(ns.any(ns.isinf(x))) else ""


def _where(node: Any) -> str:
    site = getattr(node, "site", None)
    if site is None:
        return "from code outside any file"
    file, line, function = site
    source = linecache.getline(file, line).strip()
    return f"at {file}:{line} in {function}" + (f": {source}" if source else "")
