"""The workloads' random numbers: one xorshift64* generator per guest (its state in S_RNG), so
that guests' streams do not depend on each other or on the order the guests run in."""
import numpy as np

from autoballoon.machine.jit import kernel
from autoballoon.machine.layout import S_RNG


@kernel
def rand_u64(m, g):
    """xorshift64*: a per-guest generator, so guests' streams do not depend on each other."""
    x = np.uint64(m.S[g, S_RNG])
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    m.S[g, S_RNG] = np.int64(x)
    return x * np.uint64(2685821657736338717)


@kernel
def rand_unit(m, g):
    return float(rand_u64(m, g) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
