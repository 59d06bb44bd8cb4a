"""The columns of the machine's small int64 tables, each list written once.

Per-guest scalars live in rows of small tables indexed by generated constants, so a kernel reads
``m.S[g, S_KSWAPD_PRIO]`` as a kernel engineer reads ``pgdat->kswapd_order``:
- ``P[g, P_*]``: parameters, set at boot: where the guest lives in the shared arrays, what boot
  computes (watermarks, managed pages), and one column per scenario setting that names one
  (``param=`` in scenario/spec.py — the setting's only definition);
- ``S[g, S_*]``: mutable state;
- ``V[g, *]``: counters: /proc/vmstat items, the balloon driver's, and the simulation's own;
- ``H[H_*]``: the host: its settings' columns, boot values, state, and its counters.
``define`` binds the constants from the tuples (autoballoon/enums.py); tests/test_layout.py
checks that the tables and the spec settings agree.
"""
from autoballoon.enums import define
from autoballoon.scenario.settings import kernel_params
from autoballoon.scenario.spec import KERNEL_VERSIONS, PATTERNS, GuestSpec, HostSpec

# --- per-guest parameters P[g, P_*] -------------------------------------------------------------
P_LAYOUT = ("frame_base", "nframes", "vpage_base", "nvpages", "swap_base", "nslots",
            "block_base", "nblocks")                      # state.allocate()
P_BOOT = ("wmark_min", "wmark_low", "wmark_high", "totalreserve", "managed",
          "kernel_old")                                            # Machine._boot_guest()
P_NAMES = P_LAYOUT + P_BOOT + kernel_params(GuestSpec)
PARAM = define(globals(), "P_", P_NAMES)
NR_PARAMS = len(P_NAMES)

# --- per-guest mutable scalars S[g, S_*] ---------------------------------------------------------
S_NAMES = ("clock", "alive", "nr_free", "free_head", "nr_slab", "nr_kernel", "swap_used",
           "swap_cursor",
           "kswapd_awake", "kswapd_clock", "kswapd_prio", "kswapd_failures",
           "anon_cost", "file_cost", "nonresident_age", "vmp_scanned", "vmp_reclaimed",
           "vmp_level", "ra_hits", "ra_prev_offset", "ra_prev_win",
           "balloon_target", "balloon_actual", "balloon_clock", "balloon_kick",
           "balloon_lock_from", "balloon_lock_until", "balloon_task_until", "balloon_dir",
           "callback_ns",
           "reclaimed_slab", "reporting_clock", "rng",
           "wl_cursor", "wl_phase", "wl_pos", "wl_pass", "wl_phase_start",
           "stats_clock",
           # writeback (mm/writeback.py): the queue, the device, pgdat flags, the flusher
           "wbq_head", "wbq_len", "dev_busy_until", "nr_writeback", "pgdat_flags", "nr_dirty",
           "flush_clock",
           # file readahead (struct file_ra_state, one stream per guest) and read-around
           "ra_start", "ra_size", "ra_async_size", "ra_prev", "ra_async_done", "mmap_miss",
           # 3.x get_scan_count(): zone_reclaim_stat
           "recent_scanned_anon", "recent_scanned_file", "recent_rotated_anon",
           "recent_rotated_file")
STATE = define(globals(), "S_", S_NAMES)
NR_STATE = len(S_NAMES)
# S_ALIVE: the workload runs, has finished, was killed by the guest's OOM killer, or the whole
# VM (its QEMU process) was killed by the host's OOM killer
ALIVE_RUNNING, ALIVE_FINISHED, ALIVE_KILLED, ALIVE_VM_KILLED = 1, 0, -1, -2

# --- per-guest counters V[g, *]: PGFAULT, PSWPIN, ... -------------------------------------------
VMSTAT_ITEMS = (        # /proc/vmstat, as Linux names them
    "pgfault", "pgmajfault", "pswpin", "pswpout", "pgpgin", "pgpgout",
    "pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct",
    "pgrefill", "pgactivate", "pgdeactivate", "pgrotated", "allocstall", "pageoutrun",
    "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_written",
    "kswapd_wake", "oom_kill", "workingset_refault", "workingset_activate",
    "workingset_restore", "slabs_scanned", "pgalloc", "pgfree", "swap_ra", "swap_ra_hit",
    "balloon_inflate", "balloon_deflate")
DRIVER_COUNTERS = (     # the virtio_balloon driver's own (not in /proc/vmstat)
    "balloon_shrinker_calls", "balloon_shrinker_busy", "balloon_reversals",
    "balloon_out_of_puff", "balloon_oom_deflate", "balloon_tell_host", "free_page_reported",
    "balloon_lock_ns")          # balloon_lock held (any holder), charged when the hold begins
SIM_COUNTERS = (        # the simulation's accounting
    "stall_ns", "progress", "host_faults", "host_swapin_stalls",
    "vmpressure_events_low", "vmpressure_events_medium", "vmpressure_events_critical",
    # the workload's stall time by cause; they add up to stall_ns
    "stall_fault_ns",           # minor faults (exception, zeroing, PTE), write-protect faults
    "stall_swapin_ns",          # waiting for swap reads (its own page and the readahead batch)
    "stall_fileread_ns",        # waiting for file reads (read() misses, mmap faults, readahead)
    "stall_reclaim_ns",         # direct reclaim (allocstall)
    "stall_balloon_ns",         # the balloon in the task's way: lock waits, deflate round trips
    "stall_oom_ns",             # allocations that ended in the OOM path (its futile reclaim)
    "stall_host_ns",            # host faults and host swap-ins (double paging; invisible to PSI)
    "thrash_ns")                # of swap-in + file reads: refaults of workingset pages (PSI)
VMSTAT_NAMES = VMSTAT_ITEMS + DRIVER_COUNTERS + SIM_COUNTERS
VMSTAT = define(globals(), "", VMSTAT_NAMES)
VMPRESSURE_EVENTS = VMSTAT["vmpressure_events_low"]     # + level
NR_VMSTAT = len(VMSTAT_NAMES)

# --- the host H[H_*] -------------------------------------------------------------------------------
H_BOOT = ("nframes", "total", "wmark_min", "wmark_low", "wmark_high", "swap_total")
H_STATE = ("nr_free", "swap_used", "kswapd_awake", "kswapd_clock", "clock_hand", "vmp_scanned",
           "vmp_reclaimed", "nr_events", "host_swapped", "direct_prio")
HOST_COUNTERS = ("pswpin", "pswpout", "pgfault", "pgscan", "pgsteal", "allocstall",
                 "kswapd_wake", "oom_kill")
H_NAMES = kernel_params(HostSpec) + H_BOOT + H_STATE + HOST_COUNTERS
HOST = define(globals(), "H_", H_NAMES)
NR_HOST = len(H_NAMES)
HOST_EVENTS_MAX = 4096     # host vmpressure events buffered between two control ticks

# P_KERNEL_VERSION codes (the guest `kernel` setting)
KERNEL_3_7, KERNEL_6_1, KERNEL_6_12 = (KERNEL_VERSIONS[v] for v in ("3.7", "6.1", "6.12"))

# --- workload sources ---------------------------------------------------------------------------
WL_TRACE, WL_PHASES = 0, 1
PATTERN = define(globals(), "PAT_", PATTERNS)            # PAT_SEQ, PAT_RAND, PAT_READ, PAT_ZIPF
