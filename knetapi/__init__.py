"""knetapi: write the forward computation in plain Python; ``grad(loss)`` gives its gradient.

``kn.<f>`` is every function of the Python Array API standard, dispatching on the argument types
to a registered backend and recording on the tape when an argument is traced; beside them are the
deep-learning toolbox (Knet's names, ``knetapi.nn``), the training utilities (``knetapi.training``)
and the testing helpers (``knetapi.testing``).

The code is layered, one folder a layer: the core (this folder's modules: record, differentiate,
dispatch), ``rules/`` (the derivative rules), and above them ``nn/``, ``training/``, ``testing/``
and ``data/``, which use only the core's public names.
"""

import sys as _sys

from . import data, registry
from .backends import numpy as _numpy_backend
from .convert import convert
from .debugging import NonFiniteError, debug
from .differentiate import IndependentOutputWarning, grad, value_and_grad
from .namespace import COVERAGE, MISSING, STANDARD_FUNCTIONS, array_namespace, functions
from .nn import (accuracy, bce, conv4, deconv4, dropout, elu, init, logistic, logsoftmax, mat, nll,
                 pool, relu, sigm, softmax, softplus, unpool)
from .primitives import defvjp, primitive
from .registry import backend_of, register_backend
from .testing import gradcheck
from .traced import Traced, value
from .training import load, minibatch, optim, progress, save, train

register_backend(_numpy_backend)

globals().update(functions)
for _name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64", "complex64", "complex128", "e", "inf", "nan", "newaxis", "pi"):
    globals()[_name] = getattr(registry.default_backend().ns, _name)

# kn.optim and kn.init are public modules: `import knetapi.optim` keeps working after their move.
_sys.modules[f"{__name__}.optim"] = optim
_sys.modules[f"{__name__}.init"] = init

# The core's internal modules stay importable (`from knetapi.tape import Trace`) but are not
# attributes of the package, where `kn.scatter(x)` would look like a function.
for _module in ("composite", "cotangent", "debugging", "differentiate", "namespace", "primitives",
                "pytree", "scatter", "tape", "traced"):
    globals().pop(_module, None)
del _module, _name, _sys

__version__ = "0.1.0"
__all__ = [
    "grad", "value_and_grad", "array_namespace", "register_backend", "backend_of", "convert",
    "Traced", "value", "debug", "NonFiniteError", "IndependentOutputWarning", "STANDARD_FUNCTIONS", "COVERAGE", "MISSING",
    "primitive", "defvjp",
    "relu", "sigm", "elu", "softplus", "softmax", "logsoftmax", "nll", "accuracy", "bce", "logistic",
    "dropout", "mat", "conv4", "deconv4", "pool", "unpool",
    "data", "init", "optim", "minibatch", "progress", "train", "save", "load", "gradcheck",
    *functions,
]
