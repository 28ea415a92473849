"""knetapi: write the forward computation in plain Python; ``grad(loss)`` gives its gradient.

``kn.<f>`` is every function of the Python Array API standard, dispatching on the argument types
to a registered backend and recording on the tape when an argument is traced; beside them are the
deep-learning toolbox (Knet's names) and the training utilities.
"""

from . import data, init, optim, registry
from .backends import numpy as _numpy_backend
from .batches import minibatch
from .checkpoint import load, save
from .conv import conv4, deconv4, pool, unpool
from .convert import convert
from .differentiate import IndependentOutputWarning, grad, value_and_grad
from .gradient_check import gradcheck
from .namespace import COVERAGE, MISSING, STANDARD_FUNCTIONS, array_namespace, functions
from .ops import (accuracy, bce, dropout, elu, logistic, logsoftmax, mat, nll, relu, sigm, softmax,
                  softplus)
from .primitives import defvjp, primitive
from .progressbar import progress
from .registry import backend_of, register_backend
from .traced import Traced
from .training import train

register_backend(_numpy_backend)

globals().update(functions)
for _name in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float32", "float64", "complex64", "complex128", "e", "inf", "nan", "newaxis", "pi"):
    globals()[_name] = getattr(registry.default_backend().ns, _name)

__version__ = "0.1.0"
__all__ = [
    "grad", "value_and_grad", "array_namespace", "register_backend", "backend_of", "convert",
    "Traced", "IndependentOutputWarning", "STANDARD_FUNCTIONS", "COVERAGE", "MISSING",
    "primitive", "defvjp",
    "relu", "sigm", "elu", "softplus", "softmax", "logsoftmax", "nll", "accuracy", "bce", "logistic",
    "dropout", "mat", "conv4", "deconv4", "pool", "unpool",
    "data", "init", "optim", "minibatch", "progress", "train", "save", "load", "gradcheck",
    *functions,
]
