"""Linux's constants and page flag bits, named as in the kernel.

The columns of the machine's tables (per-guest parameters, state, vmstat counters, host) are in
machine/layout.py; the virtio_balloon uapi and the pressure levels in autoballoon/uapi.py.
"""
from autoballoon.uapi import PAGE_SHIFT, PAGE_SIZE  # noqa: F401  (kernels import them from here)

SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
MAX_RECLAIM_RETRIES = 16
SHRINK_BATCH = 128
DEFAULT_SEEKS = 2
PAGE_CLUSTER = 3                       # /proc/sys/vm/page-cluster
VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256
OOM_VBALLOON_DEFAULT_PAGES = 256
PAGEBLOCK_ORDER = 9                    # 2 MiB blocks: the free page reporting granule
BLOCK_PAGES = 1 << PAGEBLOCK_ORDER     # pageblock_nr_pages
PAGE_REPORTING_DELAY_NS = 2_000_000_000
PAGE_REPORTING_CAPACITY = 32         # blocks per report (include/linux/page_reporting.h)
BALLOON_PUFF_SLEEP_NS = 200_000_000    # "Out of puff!" msleep(200)
VMPRESSURE_WIN = SWAP_CLUSTER_MAX * 16
VMPRESSURE_LEVEL_MED = 60
VMPRESSURE_LEVEL_CRITICAL = 95
VMPRESSURE_LEVEL_CRITICAL_PRIO = 3     # ilog2(100 / 10)
SHRINK_STOP = -2                       # mainline ~0UL, as a signed sentinel
SHRINK_EMPTY = -3

# --- lru lists (enum lru_list) ---------------------------------------------------------------
LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = 0, 1, 2, 3
NR_LRU_LISTS = 4

# --- struct page flags (pflags, uint16) ------------------------------------------------------
PG_lru = 1 << 0
PG_active = 1 << 1
PG_referenced = 1 << 2
PG_swapbacked = 1 << 3     # anon
PG_dirty = 1 << 4
PG_balloon = 1 << 5        # PageOffline / balloon_page
PG_free = 1 << 6           # on the buddy free list
PG_slab = 1 << 7
PG_reclaim = 1 << 8        # under writeback for reclaim: reclaim it when written back
PG_workingset = 1 << 9
PG_reserved = 1 << 10     # the kernel's own: reserved at boot, or kernel_memory

# --- per-frame reference/host byte (fref, uint8): what hardware sets on an access ---------------
F_YOUNG = 1 << 0           # guest PTE accessed bit
F_HYOUNG = 1 << 1          # host EPT accessed bit
F_DIRTY = 1 << 2           # guest PTE dirty bit
F_PRESENT = 1 << 3         # host: frame backed by a host page
F_HSWAPPED = 1 << 4        # host: frame's content is in host swap
F_UNMAPPED = 1 << 5        # in the swap cache after readahead, not yet mapped (PG_readahead)
F_HIT_MASK = F_PRESENT | F_UNMAPPED

# --- per-virtual-page flags (vflags, uint8) ---------------------------------------------------
V_FILE = 1 << 0            # page-cache page (else anon)
V_KIND_SET = 1 << 1        # kind decided by first touch
V_MAPPED = 1 << 2          # file page mapped by mmap (else reached by read()/write())

# --- registration tables (mm/hooks.py) ------------------------------------------------------------
MAX_SHRINKERS = 4
MAX_OOM_NOTIFIERS = 2
