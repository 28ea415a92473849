"""The array-api-strict backend: the standard's reference implementation, for conformance testing.

array-api-strict refuses everything the standard leaves out, so code that runs here uses nothing
beyond the standard. It overrides no op: every op runs its generic, standard-only implementation
(knetapi.scatter for the backward of indexing). Optional: ``knetapi`` registers it the first time
it meets an array-api-strict array or the name ``"strict"`` (knetapi.registry.LAZY_BUILTINS).
"""

from __future__ import annotations

import array_api_strict

NAME = "strict"
ARRAY_TYPES = (type(array_api_strict.asarray(0)),)   # array_api_strict keeps its Array class private


def namespace():
    return array_api_strict


OVERRIDES: dict = {}
