"""The tape: traces, nodes, recording a primitive call, and the backward walk.

A ``grad`` call opens a :class:`Trace` and boxes its parameters in traced values (leaf nodes).
Every primitive called on a traced value appends one :class:`Node` holding the primitive, its
unboxed arguments and its value: nothing else happens at forward time (no closures, no VJPs).
The nodes are appended in creation order, which is a topological order, so the backward walk is
a reversed loop over the list. Derivative rules run during that walk; a node's saved values are
dropped as soon as its cotangent has been passed to its parents.

Nested ``grad`` calls give nested traces: each trace has a level (later = higher) and a primitive
records on the highest trace among its arguments; values of lower traces are constants to it.
A traced value's ``_value`` may itself be traced on a lower trace, so the rules called in the
backward walk record on the lower trace: that is how higher-order derivatives work.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import cotangent, debugging, registry
from .traced import Traced

_levels = itertools.count(1)   # next() is atomic under the GIL: levels are unique across threads


class Trace:
    """One differentiation's recording: its level, backend and nodes in creation order."""

    __slots__ = ("level", "backend", "nodes", "open")
    differentiates = True   # its values' gradient is taken: float() on them raises (see Traced)

    def __init__(self, backend):
        self.level = next(_levels)
        self.backend = backend
        self.nodes: list[Node] = []
        self.open = True

    def leaf(self, value: Any) -> Traced:
        """Box a parameter value as a leaf of this trace."""
        node = Node(None, (), None, value, ())
        self.nodes.append(node)
        return Traced(value, node, self)

    @property
    def namespace(self):
        """What ``__array_namespace__`` of this trace's values returns: the recording namespace."""
        return self.backend.recording

    def constant(self, value: Any) -> Any:
        """What a non-differentiable operator (comparison, bitwise, ``//``) on this trace's values
        returns, given its raw result: the raw result itself, since no gradient flows through it."""
        return value

    def close(self) -> None:
        """Drop every node: nothing recorded here can keep arrays alive afterwards."""
        for node in self.nodes:
            node.release()
        self.nodes = []
        self.open = False


class Node:
    """One recorded primitive call. ``parents`` pairs argument positions with their nodes;
    ``nested``: its arguments include values traced on a lower trace (higher order)."""

    __slots__ = ("prim", "args", "static", "value", "parents", "nested", "cotangent", "site")

    def __init__(self, prim, args, static, value, parents, nested=False):
        self.prim = prim
        self.args = args
        self.static = static
        self.value = value
        self.parents = parents
        self.nested = nested
        self.cotangent = None

    def release(self) -> None:
        self.args = self.static = self.value = self.cotangent = None
        self.parents = ()


def record(prim, args: tuple, static: dict, trace: Trace) -> Traced:
    """Call ``prim`` on the values of ``args`` (unboxed at ``trace``) and record it there."""
    if not trace.open:
        raise ValueError(f"{prim.name}: a traced value from a finished grad call was used; "
                         "use its value instead (a grad call's traced values live only inside it)")
    raw = list(args)
    parents = []
    nested = False                  # a value traced on a lower trace is among them: higher order
    untraced = False                # a raw array is among them: its backend must be checked
    for i, a in enumerate(args):
        if type(a) is Traced:
            if a._trace is trace:
                if a._node is not None:           # None: a constant (see _lift), no gradient
                    parents.append((i, a._node))
                a = raw[i] = a._value
            nested = nested or type(a) is Traced
        elif a is not None and type(a) not in registry.SCALAR_TYPES:
            untraced = True
    # First order runs the backend's function directly, with no second dispatch; when only this
    # trace's values and scalars are among the arguments, their backend is the trace's.
    if nested:
        value = prim(*raw, **static)
    elif untraced:
        value = prim.raw(raw, static)
    else:
        value = prim.on(trace.backend)(*raw, **static)
    node = Node(prim, raw, static, value, parents, nested)
    if debugging.maybe_on and debugging.checking.get():   # kn.debug(nan=True): check the value
        node.site = debugging.user_site()
        debugging.check_forward(node, trace.backend)
    trace.nodes.append(node)
    return Traced(value, node, trace)


def _lift(g, y, args):
    """Raw floating-point arrays among a rule's inputs as constants of the highest trace among them.

    At higher order a rule mixes raw arrays with traced ones, and some libraries' arrays
    (array-api-strict's) refuse a traced right operand instead of deferring to it; as traced values
    without a node, raw arrays take part in operators and record nothing. Integer and boolean
    arrays (indices, masks) stay raw: they are keys and static data, never operands of a gradient."""
    top = max((a._trace for a in (g, y, *args) if type(a) is Traced), key=lambda t: t.level)
    ns = top.backend.ns

    def lift(a):
        if type(a) is Traced or registry.owner(type(a)) is None:
            return a
        return Traced(a, None, top) if ns.isdtype(a.dtype, "real floating") else a

    return lift(g), lift(y), [lift(a) for a in args]


def backward(trace: Trace, output: Traced, seed: Any) -> None:
    """Propagate ``seed`` (d output) from ``output`` back to every node; leaves keep their sums."""
    output._node.cotangent = seed
    backend = trace.backend
    raw_ns, recording_ns = backend.ns, backend.recording
    for node in reversed(trace.nodes):
        cot = node.cotangent
        prim = node.prim
        if cot is None or prim is None:
            continue
        # a single dense cotangent needs no densifying (the common case: skip the call)
        dense = type(cot) is not list and type(cot) is not cotangent.IndexedCotangent
        g = cot if dense else cotangent.densify(cot, node.value, backend)
        args, static, y = node.args, node.static, node.value
        xp = raw_ns
        if node.nested or type(g) is Traced:
            xp = recording_ns
            g, y, args = _lift(g, y, args)
        for i, parent in node.parents:
            vjp = prim.vjp(i)
            if vjp is None:
                continue
            pg = vjp(xp, g, y, *args, **static)
            if debugging.maybe_on and debugging.checking.get():
                debugging.check_backward(node, i, pg, backend)
            pg = cotangent.fit(xp, pg, parent.value)
            # the first cotangent a value receives is simply kept (no accumulate call)
            parent.cotangent = pg if parent.cotangent is None else cotangent.accumulate(parent.cotangent, pg)
        node.release()
