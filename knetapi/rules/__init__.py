"""The derivative rules, one module per family; importing this package fills the rule table."""

from . import elementwise, indexing, linalg, manipulation, reductions  # noqa: F401  (they add rows)
from .table import PRIMITIVES

__all__ = ["PRIMITIVES"]
