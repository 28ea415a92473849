"""Knet's deep-learning ops, built on the core's public names only.

- :mod:`.activations`: ``relu``, ``sigm``, ``elu``, ``softplus``, ``softmax``, ``logsoftmax``,
  ``dropout``, ``mat``;
- :mod:`.losses`: ``nll``, ``accuracy``, ``bce``, ``logistic``;
- :mod:`.conv`: ``conv4``, ``deconv4``, ``pool``, ``unpool``;
- :mod:`.init`: initializers (``kn.init.xavier``, ``kn.init.gaussian``, ...).
"""

from . import init
from .activations import dropout, elu, logsoftmax, logsumexp, mat, relu, sigm, softmax, softplus
from .conv import conv4, deconv4, pool, unpool
from .losses import accuracy, bce, logistic, nll

__all__ = ["init", "relu", "sigm", "elu", "softplus", "logsumexp", "softmax", "logsoftmax",
           "dropout", "mat", "nll", "accuracy", "bce", "logistic", "conv4", "deconv4", "pool",
           "unpool"]
