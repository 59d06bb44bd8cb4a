"""Zone watermarks, computed once at boot as the kernel does.

Mirrors ``init_per_zone_wmark_min`` and ``__setup_per_zone_wmarks`` (mm/page_alloc.c) for a
single zone per guest. Simplification: one zone (no ZONE_DMA32/NORMAL split, no lowmem_reserve),
so ``totalreserve_pages`` is the high watermark.
"""
from autoballoon.machine.jit import kernel
from autoballoon.machine.mm.constants import PAGE_SIZE


@kernel
def int_sqrt(x):
    """lib/math/int_sqrt.c: floor(sqrt(x)) for a non-negative integer."""
    if x <= 1:
        return x
    r = int(x ** 0.5)
    while r * r > x:
        r -= 1
    while (r + 1) * (r + 1) <= x:
        r += 1
    return r


def min_free_kbytes(managed_pages: int) -> int:
    """init_per_zone_wmark_min: int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144]."""
    lowmem_kbytes = managed_pages * (PAGE_SIZE // 1024)
    return min(max(int_sqrt(lowmem_kbytes * 16), 128), 262144)


def watermarks(managed_pages: int, watermark_scale_factor: int = 10,
               min_kbytes: int | None = None) -> tuple[int, int, int]:
    """__setup_per_zone_wmarks: (min, low, high) in pages.

    min = min_free_kbytes in pages; delta = max(min/4, managed * wsf / 10000);
    low = min + delta; high = low + delta.
    """
    if min_kbytes is None:
        min_kbytes = min_free_kbytes(managed_pages)
    wmin = min_kbytes >> (12 - 10)
    delta = max(wmin >> 2, managed_pages * watermark_scale_factor // 10000)
    return wmin, wmin + delta, wmin + 2 * delta

