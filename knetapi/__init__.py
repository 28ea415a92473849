"""knetapi: write the forward computation in plain Python; ``grad(loss)`` gives its gradient.

``kn.<f>`` is every function of the Python Array API standard, dispatching on the argument types
to a registered backend and recording on the tape when an argument is traced.
"""

from importlib.util import find_spec as _find_spec

from . import init, optim
from . import registry
from .differentiate import IndependentOutputWarning, grad, value_and_grad
from .conv import conv4, deconv4, pool, unpool
from .namespace import COVERAGE, MISSING, STANDARD_FUNCTIONS, array_namespace, functions
from .registry import backend_of, register_backend
from .batches import minibatch
from .checkpoint import load, save
from .gradient_check import gradcheck
from .progressbar import progress
from .training import train
from .traced import Traced

from .backends import numpy as _numpy_backend

register_backend(_numpy_backend)
if _find_spec("array_api_strict") is not None:   # an optional dependency (the test extra)
    from .backends import strict as _strict_backend
    register_backend(_strict_backend)

globals().update(functions)
for _name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64", "complex64", "complex128", "e", "inf", "nan", "newaxis", "pi"):
    globals()[_name] = getattr(registry.default_backend().ns, _name)

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "array_namespace", "register_backend", "backend_of", "Traced",
           "IndependentOutputWarning", "STANDARD_FUNCTIONS", "COVERAGE", "MISSING",
           "minibatch", "progress", "train", "save", "load", "gradcheck", *functions]
