"""The rule table: every primitive with a derivative rule, by name.

Each rules module adds its rows with :func:`rule`; ``knetapi.rules`` imports them all.
"""

from __future__ import annotations

from typing import Callable

from ..primitives import Primitive

PRIMITIVES: dict[str, Primitive] = {}


def rule(name: str, *vjps: Callable | None, **options) -> Primitive:
    """Add the primitive ``name`` with one VJP per positional argument (see knetapi.primitives)."""
    prim = Primitive(name, vjps if vjps else None, **options)
    PRIMITIVES[name] = prim
    return prim
