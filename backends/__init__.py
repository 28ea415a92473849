"""Backends: one module per array library, registered by ``knetapi`` on import.

Each module declares ``NAME``, ``ARRAY_TYPES``, ``namespace()`` and ``OVERRIDES``
(see knetapi.registry). Installed as ``knetapi.backends``.
"""
