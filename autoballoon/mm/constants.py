"""Kernel constants and the ids of the state arrays' columns, named after Linux.

Guest and host state is struct-of-arrays (see mm/state.py). Per-guest scalars live in rows of
small int64 tables indexed by the ids below, so numba kernels read ``S[g, KSWAPD_PRIO]`` as a
kernel engineer reads ``pgdat->kswapd_order``.
"""
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
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

# --- vmstat items (one int64 per guest each) --------------------------------------------------
VMSTAT_NAMES = (
    "pgfault", "pgmajfault", "pswpin", "pswpout", "pgpgin", "pgpgout",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
    "pgrefill", "pgactivate", "pgdeactivate", "pgrotated", "allocstall", "pageoutrun",
    "kswapd_wake", "oom_kill", "workingset_refault", "workingset_activate",
    "workingset_restore", "slabs_scanned", "pgalloc", "pgfree", "swap_ra", "swap_ra_hit",
    "balloon_inflate", "balloon_deflate",
    # virtio_balloon driver counters (not in /proc/vmstat; the issue asks for them)
    "balloon_shrinker_calls", "balloon_shrinker_busy", "balloon_reversals",
    "balloon_out_of_puff", "balloon_oom_deflate", "balloon_tell_host", "free_page_reported",
    # simulation accounting
    "stall_ns", "progress", "host_faults", "host_swapin_stalls",
    "vmpressure_low", "vmpressure_medium", "vmpressure_critical",
)
_vm = {n: i for i, n in enumerate(VMSTAT_NAMES)}
PGFAULT, PGMAJFAULT, PSWPIN, PSWPOUT, PGPGIN, PGPGOUT = (_vm[n] for n in VMSTAT_NAMES[:6])
PGSCAN_KSWAPD, PGSCAN_DIRECT, PGSTEAL_KSWAPD, PGSTEAL_DIRECT = (
    _vm["pgscan_kswapd"], _vm["pgscan_direct"], _vm["pgsteal_kswapd"], _vm["pgsteal_direct"])
PGREFILL, PGACTIVATE, PGDEACTIVATE, PGROTATED = (
    _vm["pgrefill"], _vm["pgactivate"], _vm["pgdeactivate"], _vm["pgrotated"])
ALLOCSTALL, PAGEOUTRUN, KSWAPD_WAKE, OOM_KILL = (
    _vm["allocstall"], _vm["pageoutrun"], _vm["kswapd_wake"], _vm["oom_kill"])
WORKINGSET_REFAULT, WORKINGSET_ACTIVATE, WORKINGSET_RESTORE = (
    _vm["workingset_refault"], _vm["workingset_activate"], _vm["workingset_restore"])
SLABS_SCANNED, PGALLOC, PGFREE, SWAP_RA, SWAP_RA_HIT = (
    _vm["slabs_scanned"], _vm["pgalloc"], _vm["pgfree"], _vm["swap_ra"], _vm["swap_ra_hit"])
BALLOON_INFLATE, BALLOON_DEFLATE = _vm["balloon_inflate"], _vm["balloon_deflate"]
BALLOON_SHRINKER_CALLS, BALLOON_SHRINKER_BUSY, BALLOON_REVERSALS = (
    _vm["balloon_shrinker_calls"], _vm["balloon_shrinker_busy"], _vm["balloon_reversals"])
BALLOON_OUT_OF_PUFF, BALLOON_OOM_DEFLATE, BALLOON_TELL_HOST, FREE_PAGE_REPORTED = (
    _vm["balloon_out_of_puff"], _vm["balloon_oom_deflate"], _vm["balloon_tell_host"],
    _vm["free_page_reported"])
STALL_NS, PROGRESS, HOST_FAULTS, HOST_SWAPIN_STALLS = (
    _vm["stall_ns"], _vm["progress"], _vm["host_faults"], _vm["host_swapin_stalls"])
VMPRESSURE_EVENTS = _vm["vmpressure_low"]   # + level
NR_VMSTAT = len(VMSTAT_NAMES)

# --- per-guest parameters (P[g, ...], int64, set once) ----------------------------------------
_params = ("frame_base", "nframes", "vpage_base", "nvpages", "swap_base", "nslots",
           "kernel_old", "swappiness", "wmark_min", "wmark_low", "wmark_high", "managed",
           "swap_read_ns", "swap_write_ns", "swap_ns_per_page", "kswapd_scan_ns",
           "features", "autoballoon_rfc", "balloon_batch_ns", "fault_ns", "block_base",
           "nblocks")
(P_FRAME_BASE, P_NFRAMES, P_VPAGE_BASE, P_NVPAGES, P_SWAP_BASE, P_NSLOTS, P_KERNEL_OLD,
 P_SWAPPINESS, P_WMARK_MIN, P_WMARK_LOW, P_WMARK_HIGH, P_MANAGED, P_SWAP_READ_NS,
 P_SWAP_WRITE_NS, P_SWAP_NS_PER_PAGE, P_KSWAPD_SCAN_NS, P_FEATURES, P_AUTOBALLOON_RFC,
 P_BALLOON_BATCH_NS, P_FAULT_NS, P_BLOCK_BASE, P_NBLOCKS) = range(len(_params))
NR_PARAMS = len(_params)

# --- per-guest mutable scalars (S[g, ...], int64) ---------------------------------------------
_state = ("clock", "alive", "nr_free", "free_head", "nr_slab", "swap_used", "swap_cursor",
          "kswapd_awake", "kswapd_clock", "kswapd_prio", "kswapd_failures",
          "anon_cost", "file_cost", "nonresident_age", "vmp_scanned", "vmp_reclaimed",
          "vmp_level", "ra_hits", "ra_prev_offset", "ra_prev_win",
          "balloon_target", "balloon_actual", "balloon_clock", "puff_until", "balloon_dir",
          "slab_deferred", "balloon_deferred", "reporting_clock", "rng",
          "wl_cursor", "wl_phase", "wl_pos", "wl_pass", "wl_phase_start",
          "stats_clock", "balloon_locked")
# S_ALIVE: the workload runs, has finished, was killed by the guest's OOM killer, or the whole
# VM (its QEMU process) was killed by the host's OOM killer
ALIVE_RUNNING, ALIVE_FINISHED, ALIVE_KILLED, ALIVE_VM_KILLED = 1, 0, -1, -2
(S_CLOCK, S_ALIVE, S_NR_FREE, S_FREE_HEAD, S_NR_SLAB, S_SWAP_USED, S_SWAP_CURSOR,
 S_KSWAPD_AWAKE, S_KSWAPD_CLOCK, S_KSWAPD_PRIO, S_KSWAPD_FAILURES,
 S_ANON_COST, S_FILE_COST, S_NONRESIDENT_AGE, S_VMP_SCANNED, S_VMP_RECLAIMED, S_VMP_LEVEL,
 S_RA_HITS, S_RA_PREV_OFFSET, S_RA_PREV_WIN, S_BALLOON_TARGET, S_BALLOON_ACTUAL,
 S_BALLOON_CLOCK, S_PUFF_UNTIL, S_BALLOON_DIR, S_SLAB_DEFERRED, S_BALLOON_DEFERRED,
 S_REPORTING_CLOCK, S_RNG, S_WL_CURSOR, S_WL_PHASE, S_WL_POS, S_WL_PASS, S_WL_PHASE_START,
 S_STATS_CLOCK, S_BALLOON_LOCKED) = range(len(_state))
NR_STATE = len(_state)

# --- virtio_balloon feature bits (include/uapi/linux/virtio_balloon.h) -------------------------
VIRTIO_BALLOON_F_MUST_TELL_HOST = 0
VIRTIO_BALLOON_F_STATS_VQ = 1
VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2
VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3
VIRTIO_BALLOON_F_PAGE_POISON = 4
VIRTIO_BALLOON_F_REPORTING = 5
# The 2012 RFC's AUTO_BALLOON reused bit 2; it was never merged, so it gets a bit of its own here.
VIRTIO_BALLOON_F_AUTO_BALLOON = 16
FEATURE_BITS = {
    "must_tell_host": VIRTIO_BALLOON_F_MUST_TELL_HOST,
    "stats_vq": VIRTIO_BALLOON_F_STATS_VQ,
    "deflate_on_oom": VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
    "free_page_hint": VIRTIO_BALLOON_F_FREE_PAGE_HINT,
    "page_poison": VIRTIO_BALLOON_F_PAGE_POISON,
    "free_page_reporting": VIRTIO_BALLOON_F_REPORTING,
    "auto_balloon": VIRTIO_BALLOON_F_AUTO_BALLOON,
}

# --- stats virtqueue tags -----------------------------------------------------------------------
NR_STATS_TAGS = 16

# --- host scalars (H[...], int64) ---------------------------------------------------------------
_host = ("nframes", "total", "nr_free", "wmark_min", "wmark_low", "wmark_high", "swap_total",
         "swap_used", "swap_read_ns", "swap_write_ns", "swap_ns_per_page", "fault_ns",
         "kswapd_scan_ns", "kswapd_awake", "kswapd_clock", "clock_hand", "vmp_scanned",
         "vmp_reclaimed", "nr_events", "pswpin", "pswpout", "pgfault", "pgscan", "pgsteal",
         "allocstall", "kswapd_wake", "oom_kill", "host_swapped")
(H_NFRAMES, H_TOTAL, H_NR_FREE, H_WMARK_MIN, H_WMARK_LOW, H_WMARK_HIGH, H_SWAP_TOTAL,
 H_SWAP_USED, H_SWAP_READ_NS, H_SWAP_WRITE_NS, H_SWAP_NS_PER_PAGE, H_FAULT_NS,
 H_KSWAPD_SCAN_NS, H_KSWAPD_AWAKE, H_KSWAPD_CLOCK, H_CLOCK_HAND, H_VMP_SCANNED,
 H_VMP_RECLAIMED, H_NR_EVENTS, H_PSWPIN, H_PSWPOUT, H_PGFAULT, H_PGSCAN, H_PGSTEAL,
 H_ALLOCSTALL, H_KSWAPD_WAKE, H_OOM_KILL, H_HOST_SWAPPED) = range(len(_host))
NR_HOST = len(_host)
HOST_NAMES = _host
HOST_EVENTS_MAX = 4096     # host vmpressure events buffered between two control ticks

# --- workload sources -----------------------------------------------------------------------------
WL_TRACE, WL_PHASES = 0, 1
PAT_SEQ, PAT_RAND, PAT_READ, PAT_ZIPF = 0, 1, 2, 3
