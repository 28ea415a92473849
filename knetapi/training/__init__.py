"""Training utilities, built on the core's public names only.

- :mod:`.optim`: optimizers with Knet's defaults (``kn.optim.SGD``, ``Adam``, ...);
- :mod:`.batches`: ``minibatch``;
- :mod:`.progressbar`: ``progress``;
- :mod:`.loop`: ``train``, the training loop;
- :mod:`.checkpoint`: ``save`` and ``load`` (safetensors: never executes code).
"""

from . import optim
from .batches import minibatch
from .checkpoint import load, save
from .loop import train
from .progressbar import progress

__all__ = ["optim", "minibatch", "progress", "train", "save", "load"]
