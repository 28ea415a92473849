"""The derivative rules, one module per family; importing this package fills the rule table.

Coverage of the Array API standard 2025.12 (knetapi.namespace.COVERAGE, checked by a test):
135 functions: 74 differentiable (11 of them built from other rules), 40 non-differentiable,
18 creation and dtype functions, 3 missing (``conj``, ``real``, ``imag``: complex
differentiation is not supported yet; knetapi.namespace.MISSING says why).
Rules that are not standard functions: ``getitem`` (indexing), ``index_add`` (its scatter-add
backward), ``logsumexp``, the activations ``relu``, ``sigm``, ``elu``, ``softplus``, ``softmax``,
``logsoftmax``, and convolution and pooling: ``conv4``, ``deconv4``, ``conv4_w`` (conv4's weight gradient), ``pool``,
``unpool``.
"""

from . import activations, conv, elementwise, indexing, linalg, manipulation, reductions  # noqa: F401  (they add rows)
from .table import PRIMITIVES

__all__ = ["PRIMITIVES"]
