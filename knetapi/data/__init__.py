"""Data sets for the examples and benchmarks, as numpy arrays (batch-first).

- :func:`housing`: the UCI Boston Housing table (shipped), and :func:`split` of rows into a
  training and a test part;
- :func:`mnist`: MNIST-format images from IDX files (by default Debian's Fashion-MNIST), read by
  :func:`read_idx`;
- :func:`hiawatha`: a poem (shipped) as text, character vocabulary and integer codes.

The shipped files lie in this folder; its README.md gives their sources and licences.
"""

from .idx import read_idx
from .images import mnist
from .tabular import housing, split
from .text import hiawatha

__all__ = ["housing", "split", "mnist", "read_idx", "hiawatha"]
