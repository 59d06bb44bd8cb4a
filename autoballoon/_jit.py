"""The one numba decorator the package uses: compiled, cached on disk, no GIL."""
from numba import njit

kernel = njit(cache=True, nogil=True)
