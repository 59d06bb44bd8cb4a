"""Index constants generated from one ordered tuple of names.

Kernels index small int64 tables by constants (``m.V[g, PSWPIN]``, ``m.P[g, P_SWAPPINESS]``).
Each table's columns are defined once, as a tuple of names; ``define`` binds ``PREFIX_NAME = i``
in the defining module, so there is no second, hand-ordered list that could drift from the first.
numba reads the bound ints as compile-time constants.
"""
from __future__ import annotations


def define(namespace: dict, prefix: str, names) -> dict[str, int]:
    """Bind ``{prefix}{NAME} = index`` in ``namespace`` for each name; returns {name: index}."""
    index = {}
    for i, name in enumerate(names):
        const = prefix + name.upper().replace("-", "_")
        if const in namespace or name in index:
            raise ValueError(f"{const}: defined twice")
        namespace[const] = i
        index[name] = i
    return index
