"""Pytrees: any nesting of list, tuple (named tuples too) and dict whose leaves are values.

Paths name a leaf the way a user would write it: ``w['layer1'][0]``.
"""

from __future__ import annotations

from typing import Any, Callable


def is_namedtuple(x: Any) -> bool:
    """Whether ``x`` is a named tuple (a tuple whose type has ``_fields``)."""
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def map_with_path(fn: Callable[[str, Any], Any], tree: Any, path: str) -> Any:
    """A tree of the same structure with each leaf replaced by ``fn(path_of_leaf, leaf)``.

    Leaves are visited in a fixed order (lists and tuples by position, dicts by insertion order)."""
    if isinstance(tree, dict):
        return type(tree)((k, map_with_path(fn, v, f"{path}[{k!r}]")) for k, v in tree.items())
    if is_namedtuple(tree):
        return type(tree)(*(map_with_path(fn, v, f"{path}.{f}") for f, v in zip(tree._fields, tree)))
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_with_path(fn, v, f"{path}[{i}]") for i, v in enumerate(tree))
    return fn(path, tree)


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """A tree of the same structure with each leaf replaced by ``fn(leaf)``."""
    return map_with_path(lambda _, leaf: fn(leaf), tree, "")


def leaves(tree: Any) -> list:
    """The leaves of ``tree`` in :func:`map_with_path` order."""
    found: list = []
    map_with_path(lambda _, leaf: found.append(leaf), tree, "")
    return found
