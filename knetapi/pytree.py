"""Pytrees: any nesting of list, tuple (named tuples too) and dict whose leaves are values.

Paths name a leaf the way a user would write it: ``w['layer1'][0]``. A pytree is finite and at
most :data:`MAX_DEPTH` containers deep: walking a cyclic one (a list that contains itself) or a
deeper one raises ValueError naming the path, never RecursionError.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

MAX_DEPTH = 100     # containers nested in one another; models' parameters use a handful


def is_namedtuple(x: Any) -> bool:
    """Whether ``x`` is a named tuple (a tuple whose type has ``_fields``)."""
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def enter(container: Any, path: str, ancestors: dict[int, str]) -> dict[int, str]:
    """``ancestors`` (the id and path of each container from the root down to ``container``'s
    parent) with ``container`` added. ValueError naming ``path`` if ``container`` is one of them
    (the tree is cyclic) or if the tree nests more than :data:`MAX_DEPTH` containers."""
    if id(container) in ancestors:
        raise ValueError(f"the pytree is cyclic: {path or 'the root'} is "
                         f"{ancestors[id(container)] or 'the root'} itself (a "
                         f"{type(container).__name__} that contains itself); pass a tree without "
                         f"cycles")
    if len(ancestors) >= MAX_DEPTH:
        raise ValueError(f"the pytree is too deep: {path or 'the root'} is nested in more than "
                         f"{MAX_DEPTH} lists, tuples and dicts (at most {MAX_DEPTH} levels); "
                         f"flatten it, e.g. into a list or a dict of arrays")
    return {**ancestors, id(container): path}


def map_with_path(fn: Callable[[str, Any], Any], tree: Any, path: str) -> Any:
    """A tree of the same structure with each leaf replaced by ``fn(path_of_leaf, leaf)``.

    Leaves are visited in a fixed order (lists and tuples by position, dicts by insertion order).
    ValueError for a cyclic tree or one nested too deeply (see :func:`enter`)."""
    return _map(fn, tree, path, {})


def _map(fn: Callable[[str, Any], Any], tree: Any, path: str, ancestors: dict[int, str]) -> Any:
    if not isinstance(tree, (dict, list, tuple)):
        return fn(path, tree)
    ancestors = enter(tree, path, ancestors)
    if isinstance(tree, dict):
        return type(tree)((k, _map(fn, v, f"{path}[{k!r}]", ancestors)) for k, v in tree.items())
    if is_namedtuple(tree):
        return type(tree)(*(_map(fn, v, f"{path}.{f}", ancestors)
                            for f, v in zip(tree._fields, tree)))
    return type(tree)(_map(fn, v, f"{path}[{i}]", ancestors) for i, v in enumerate(tree))


def flatten(tree: Any) -> tuple[list, Any]:
    """``(leaves, structure)``: the leaves of ``tree`` in :func:`map_with_path` order and what
    :func:`unflatten` needs to build a tree of the same structure around new leaves.

    The fast walk for ``grad``'s every call: it builds no paths. A cyclic or too deep tree is
    walked again by :func:`map_with_path`, whose error names the path."""
    found: list = []
    try:
        return found, _flatten(tree, found, 0)
    except _TooDeep:
        map_with_path(lambda _, leaf: leaf, tree, "")
        raise AssertionError("map_with_path accepted a tree that flatten found too deep") from None


class _TooDeep(Exception):
    pass


def _flatten(tree: Any, found: list, depth: int) -> Any:
    """The structure of ``tree``: None for a leaf, else (type, keys or None, child structures)."""
    if not isinstance(tree, (dict, list, tuple)):
        found.append(tree)
        return None
    if depth == MAX_DEPTH:
        raise _TooDeep
    if isinstance(tree, dict):
        return type(tree), tuple(tree), tuple(_flatten(v, found, depth + 1) for v in tree.values())
    return type(tree), None, tuple(_flatten(v, found, depth + 1) for v in tree)


def unflatten(structure: Any, leaves: Iterable) -> Any:
    """The tree of ``structure`` (from :func:`flatten`) with ``leaves`` in order."""
    return _unflatten(structure, iter(leaves))


def _unflatten(structure: Any, leaves: Iterator) -> Any:
    if structure is None:
        return next(leaves)
    kind, keys, children = structure
    values = [_unflatten(child, leaves) for child in children]
    if keys is not None:
        return kind(zip(keys, values))
    return kind(*values) if hasattr(kind, "_fields") else kind(values)


def leaf_paths(tree: Any, root: str) -> list[str]:
    """The path of each leaf of ``tree`` below ``root``, in :func:`flatten` order (for messages)."""
    found: list[str] = []
    map_with_path(lambda path, _: found.append(path), tree, root)
    return found


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """A tree of the same structure with each leaf replaced by ``fn(leaf)``."""
    return map_with_path(lambda _, leaf: fn(leaf), tree, "")


def leaves(tree: Any) -> list:
    """The leaves of ``tree`` in :func:`map_with_path` order."""
    found: list = []
    map_with_path(lambda _, leaf: found.append(leaf), tree, "")
    return found
