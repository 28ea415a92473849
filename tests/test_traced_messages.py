"""Every way a traced value refuses to leave the tape, with the whole message it gives
(knetapi/traced.py): the message is the fix, so a changed word is a changed contract. Also
``float()`` of a value that depends on a still-open outer trace through a finished inner one."""

import numpy as np
import pytest

import knetapi as kn

LEAVING = ("of a traced value would take it off the tape and its gradient would be silently lost "
           "(math functions, numpy item assignment and float() all do this). Keep it on the tape with "
           "kn functions (kn.exp instead of math.exp; kn.where or kn.stack instead of writing into an "
           "array); to read the value for logging or control flow, use kn.value(x), through which no "
           "gradient flows")
BUILD_NEW = "and build new arrays instead of writing into existing ones (kn.where, kn.stack)"


def assign(x):
    x[0] = 1.0


REFUSALS = [
    (lambda x: float(x[0]), f"float() {LEAVING}"),
    (lambda x: complex(x[0]), f"complex() {LEAVING}"),
    (lambda x: np.add.reduce(x), f"numpy.add.reduce cannot record on knetapi's tape on a traced value; "
                                 f"use kn.add(...), {BUILD_NEW}"),
    (lambda x: np.exp(x, out=np.zeros(2)), f"numpy.exp cannot record on knetapi's tape with out=; use "
                                           f"kn.exp(...), {BUILD_NEW}"),
    (lambda x: np.exp(x, out=np.zeros(2), casting="unsafe"),
     f"numpy.exp cannot record on knetapi's tape with out, casting=; use kn.exp(...), {BUILD_NEW}"),
    (lambda x: np.spacing(x), f"numpy.spacing cannot record on knetapi's tape on a traced value; use "
                              f"kn.<function> (kn.STANDARD_FUNCTIONS), {BUILD_NEW}"),
    (lambda x: np.asarray(x), "a knetapi traced value cannot become a numpy array inside grad (the tape "
                              "would lose it); call kn.<function> or xp = kn.array_namespace(x) instead "
                              "of numpy functions"),
    (lambda x: np.concatenate([x, x]), "numpy.concatenate cannot record on knetapi's tape; use "
                                       "kn.<function> (e.g. kn.concatenate where the standard has it) or "
                                       "xp = kn.array_namespace(x)"),
    (lambda x: x.__dlpack__(), "a knetapi traced value cannot be exported through DLPack: the tape would "
                               "lose it; export the raw value after grad returns"),
    (lambda x: len(x[0]), "len() of a 0-d traced value"),
    (lambda x: next(iter(x[0])), "iteration over a 0-d traced value"),
    (assign, "traced arrays are immutable: `x[key] = v` cannot be recorded. Build a new array instead, "
             "e.g. kn.where(mask, v, x), kn.concat([...]) or kn.stack([...]), and rebind the name"),
]


@pytest.mark.parametrize("use, message", REFUSALS,
                         ids=["float", "complex", "ufunc method", "out=", "two keywords",
                              "ufunc without a kn function",
                              "asarray", "array function", "dlpack", "len of 0-d", "iter of 0-d",
                              "item assignment"])
def test_a_traced_value_refuses_with_the_fix(use, message):
    def f(x):
        with pytest.raises(TypeError) as caught:
            use(x)
        assert str(caught.value) == message
        return kn.sum(x)
    kn.grad(f)(np.array([1.0, 2.0]))


def test_repr_shows_the_value_and_the_level():
    def f(x):
        assert repr(x) == f"Traced(array([1., 2.]), level={x._trace.level})"
        return kn.sum(x)
    kn.grad(f)(np.array([1.0, 2.0]))


def test_float_of_a_finished_inner_value_that_depends_on_an_open_outer_trace_raises():
    def outer(x):
        kept = []
        kn.grad(lambda y: kept.append(kn.sum(y * x)) or kept[0])(x)   # the inner trace is closed now
        with pytest.raises(TypeError, match=r"^float\(\) of a traced value would take it off the tape"):
            float(kept[0])
        return kn.sum(x)
    kn.grad(outer)(np.array([1.0, 2.0]))
