"""Boot-time memory accounting: memory reserved at boot, the zones, min_free_kbytes and the
watermarks, computed once as the kernel does (x86-64, QEMU's default "pc" machine).

Mirrors, for Linux 6.1 (and 3.7 where it differs):
- what memblock keeps for good, so ``MemTotal`` (managed pages) is less than RAM
  (``reserve_real_mode``: the whole first 1 MiB; the struct page array, 64 bytes per 4 KiB page;
  the kernel image, per-cpu areas and early tables; the 64 MiB swiotlb bounce buffer when some
  RAM lies above 4 GiB), as measured on Debian's 6.1 kernel: :func:`boot_reserved_pages`;
- the zones: ZONE_DMA (below 16 MiB, 3840 managed pages), ZONE_DMA32 (to 4 GiB; QEMU's pc
  machine keeps RAM below 3 GiB when it has 3.5 GiB or more), ZONE_NORMAL (above 4 GiB), the
  struct pages taken from the top: :func:`zone_managed`;
- ``calculate_min_free_kbytes`` (int_sqrt(lowmem_kbytes * 16), clamped to [128, 262144];
  3.x: [128, 65536]) and khugepaged's ``set_recommended_min_free_kbytes`` with THP enabled
  ("always" or "madvise", and only when totalram >= 512 MiB — ``hugepage_init`` turns THP off
  below): ``pageblock_nr_pages * nr_zones * (2 + MIGRATE_PCPTYPES^2)`` pages, at most 5 % of
  ``nr_free_buffer_pages()``: :func:`min_free_kbytes`;
- ``__setup_per_zone_wmarks`` (per zone: min in proportion to managed pages, then
  ``low = min + max(min/4, managed * watermark_scale_factor / 10000)``, ``high = low + that``;
  3.x: low = 1.25 min, high = 1.5 min, no scale factor), ``setup_per_zone_lowmem_reserve``
  (ratios 256/256/32) and ``calculate_totalreserve_pages``: :func:`watermarks`.

Simplification (a documented choice): the model has one pool of free pages per machine, not
one per zone. The zones are folded into one set of effective thresholds: a movable allocation
takes from the highest zone first and dips into a lower one only while that zone's free pages
exceed its watermark plus its lowmem reserve, so a lower zone adds ``min(managed, wmark +
reserve)`` pages, which stay free, to each threshold (``low`` to the high one: kswapd sleeps as
soon as the highest zone is balanced). For a 1 GiB Debian 6.1 guest with
249,150 managed pages that gives min/low/high = 12,221 / 15,036 / 17,808 pages, where the
single-zone sqrt rule gave 1,024 / 1,286 / 1,548. Not modelled: watermark boosting (no fragmentation is modelled), memory
hotplug, the DMA zone's own allocations.
"""
from __future__ import annotations

from dataclasses import dataclass

from autoballoon.machine.jit import kernel
from autoballoon.machine.mm.constants import BLOCK_PAGES, PAGE_SIZE

KIB = 1024
MIB = 2**20
GIB = 2**30
DMA_MANAGED = 3840                 # ZONE_DMA: 16 MiB minus the reserved first 1 MiB and holes
MIGRATE_PCPTYPES = 3
LOWMEM_RESERVE_RATIO = (256, 256, 32)   # sysctl_lowmem_reserve_ratio: DMA, DMA32, NORMAL
THP_MIN_TOTALRAM = 512 * MIB       # hugepage_init(): THP off on smaller machines
# What the Debian 6.1 amd64 kernel (6.1.0-57) keeps at boot under QEMU/SeaBIOS with 2 vCPUs, in kB,
# measured: MemTotal of a guest booted with 256 MiB .. 4 GiB is RAM - 49,180 kB - 17.5 kB per MiB
# of RAM (struct pages are 16 of it) - the swiotlb when RAM reaches above 4 GiB; exact at 256 MiB
# (208,484 kB), 512 MiB, 1 GiB (981,476 kB) and 2 GiB, 776 kB off at 4 GiB. Each further vCPU
# costs 248 kB more (per-cpu areas).
BOOT_FIXED_KB = 49_180             # kernel image, first MiB, e820 holes, per-cpu, early tables
BOOT_KB_PER_MIB = 17.5             # struct pages (64 B per 4 KiB page) and per-page tables
SWIOTLB_BYTES = 64 * MIB           # IO_TLB_DEFAULT_SIZE, when RAM extends above 4 GiB


def below_4g(ram: int) -> int:
    """RAM below 4 GiB on QEMU's pc (i440fx) machine: all of it below 3.5 GiB, else 3 GiB."""
    return ram if ram < 3 * GIB + GIB // 2 else 3 * GIB


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


def boot_reserved_pages(ram: int) -> int:
    """Pages of ``ram`` bytes that never reach the page allocator (RAM - MemTotal)."""
    reserved_kb = BOOT_FIXED_KB + int(ram / MIB * BOOT_KB_PER_MIB)
    if ram > below_4g(ram):
        reserved_kb += SWIOTLB_BYTES // KIB
    return -(-min(reserved_kb, ram // KIB) // (PAGE_SIZE // KIB))


def zone_managed(ram: int, managed: int) -> tuple[int, int, int]:
    """Managed pages of ZONE_DMA, ZONE_DMA32, ZONE_NORMAL for ``managed`` pages of ``ram``
    bytes: DMA keeps 3840; the struct pages (ram / 64) come off the top, so out of ZONE_NORMAL
    (RAM above 4 GiB) when there is one; DMA32 has the rest."""
    dma = min(DMA_MANAGED, managed)
    normal = max(0, (ram - below_4g(ram)) // PAGE_SIZE - ram // (64 * PAGE_SIZE))
    normal = min(normal, managed - dma)
    return dma, managed - dma - normal, normal


def per_zone_watermarks(zones, min_kbytes: int, wsf: int, old: bool):
    """__setup_per_zone_wmarks(): [(min, low, high)] per zone."""
    pages_min = min_kbytes >> 2
    lowmem = sum(zones)
    out = []
    for managed in zones:
        tmp = pages_min * managed // lowmem if lowmem else 0
        if old:                       # 3.x: no watermark_scale_factor (added in 4.6)
            out.append((tmp, tmp + (tmp >> 2), tmp + (tmp >> 1)))
            continue
        delta = max(tmp >> 2, managed * wsf // 10000)
        out.append((tmp, tmp + delta, tmp + 2 * delta))
    return out


def min_free_kbytes(zones, thp: bool, wsf: int = 10, old: bool = False) -> int:
    """calculate_min_free_kbytes(), then khugepaged's recommendation when THP is enabled."""
    managed = sum(zones)
    kbytes = int(int_sqrt(managed * (PAGE_SIZE // KIB) * 16))
    kbytes = min(max(kbytes, 128), 65536 if old else 262144)
    if not thp or managed * PAGE_SIZE < THP_MIN_TOTALRAM:
        return kbytes
    # 6.1 counts the zones up to ZONE_NORMAL; 3.x every populated zone: the same here
    nr_zones = sum(1 for z in zones if z > 0)
    recommended = BLOCK_PAGES * nr_zones * (2 + MIGRATE_PCPTYPES * MIGRATE_PCPTYPES)
    free_buffer = sum(z - high for z, (_, _, high) in zip(zones, per_zone_watermarks(zones, kbytes,
                                                                             wsf, old)))
    recommended = min(recommended, free_buffer // 20) * (PAGE_SIZE // KIB)
    return max(kbytes, recommended)


@dataclass(frozen=True)
class Watermarks:
    """The effective one-pool thresholds (pages) and what they come from."""
    min: int
    low: int
    high: int
    totalreserve: int              # calculate_totalreserve_pages(): si_mem_available's reserve
    min_free_kbytes: int
    zones: tuple[int, int, int]    # managed pages of DMA, DMA32, NORMAL

    def __iter__(self):            # (min, low, high), as the tables store them
        return iter((self.min, self.low, self.high))


def watermarks(ram: int, managed: int, wsf: int = 10, thp: bool = True,
               old: bool = False) -> Watermarks:
    """The watermarks of a machine with ``ram`` bytes of which ``managed`` pages are managed."""
    zones = zone_managed(ram, managed)
    kbytes = min_free_kbytes(zones, thp, wsf, old)
    marks = per_zone_watermarks(zones, kbytes, wsf, old)
    populated = [i for i, z in enumerate(zones) if z > 0]
    top = populated[-1]
    reserve = [sum(zones[i + 1:]) // LOWMEM_RESERVE_RATIO[i] for i in range(len(zones))]
    wmin, wlow, whigh = marks[top]
    for i in populated[:-1]:          # lower zones: what stays free in them
        wmin += min(zones[i], marks[i][0] + reserve[i])
        floor = min(zones[i], marks[i][1] + reserve[i])
        wlow += floor
        whigh += floor
    totalreserve = sum(min(zones[i], marks[i][2] + reserve[i]) for i in populated)
    return Watermarks(wmin, wlow, whigh, totalreserve, kbytes, zones)
