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
VM_READAHEAD_PAGES = 32                # file readahead window: 128 KiB (ra_pages)
MMAP_LOTSAMISS = 100                   # read-around stops after this many mmap misses
WRITEBACK_THROTTLE_NS = 100_000_000    # reclaim_throttle(VMSCAN_THROTTLE_WRITEBACK): HZ / 10
NOPROGRESS_THROTTLE_NS = 4_000_000     # reclaim_throttle(VMSCAN_THROTTLE_NOPROGRESS): 1 jiffy, HZ=250
BIO_SUBMIT_NS = 2_000                  # CPU cost of submitting one page's write (no I/O wait)
DIRTY_WRITEBACK_NS = 5_000_000_000     # dirty_writeback_centisecs = 500: the flusher's period
DIRTY_EXPIRE_S = 30                    # dirty_expire_centisecs = 3000: write pages this old
DIRTY_BACKGROUND_RATIO = 10            # % of dirtyable memory: background writeback above it

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
PG_writeback = 1 << 11    # a write of the page is in flight (mm/writeback.py)
PG_readahead = 1 << 12    # brought in by readahead and not yet used: a hit counts as one
PG_locked = 1 << 13       # a readahead read of the page is in flight: a reader waits for it

# --- per-frame reference/host byte (fref, uint8): what hardware sets on an access ---------------
F_YOUNG = 1 << 0           # guest PTE accessed bit
F_HYOUNG = 1 << 1          # host EPT accessed bit
F_DIRTY = 1 << 2           # guest PTE dirty bit
F_PRESENT = 1 << 3         # host: frame backed by a host page
F_HSWAPPED = 1 << 4        # host: frame's content is in host swap
F_UNMAPPED = 1 << 5        # resident in the swap cache but not mapped (readahead, or reclaim
                           # unmapped it to write it out): the next access is a minor fault
F_WPROTECT = 1 << 6        # mapped read-only after a read swap-in: the first write faults
F_HIT_MASK = F_PRESENT | F_UNMAPPED

# --- per-virtual-page flags (vflags, uint8) ---------------------------------------------------
V_FILE = 1 << 0            # page-cache page (else anon)
V_KIND_SET = 1 << 1        # kind decided by first touch
V_MAPPED = 1 << 2          # file page mapped by mmap (else reached by read()/write())

# --- pgdat->flags set by kswapd's shrink_node (S_PGDAT_FLAGS) ------------------------------------
PGDAT_WRITEBACK = 1 << 0   # reclaim met only pages under writeback: throttle
PGDAT_DIRTY = 1 << 1       # reclaim met only dirty file pages: kswapd may write them

# --- registration tables (mm/hooks.py) ------------------------------------------------------------
MAX_SHRINKERS = 4
MAX_OOM_NOTIFIERS = 2
