"""What the simulated kernel shares with user space and the host, as the real headers define it.

One home for the names and numbers that the scenario (feature names), the kernels (feature bits,
stats tags, pressure levels), the host policies (stats keys, levels) and the trace tools (page
size) use. Mirrors include/uapi/linux/virtio_balloon.h (feature bits, stats tags), the levels of
the cgroup ``memory.pressure_level`` interface (mm/vmpressure.c), and the x86-64 page size.
Importing it loads no numba.
"""
from autoballoon.enums import define

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# --- virtio_balloon feature bits (include/uapi/linux/virtio_balloon.h) ----------------------------
VIRTIO_BALLOON_F_MUST_TELL_HOST = 0     # tell the host before using deflated pages
VIRTIO_BALLOON_F_STATS_VQ = 1           # memory statistics virtqueue
VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2     # deflate the balloon on guest OOM
VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3     # VQ to report free pages (migration)
VIRTIO_BALLOON_F_PAGE_POISON = 4        # guest is using page poisoning
VIRTIO_BALLOON_F_REPORTING = 5          # page reporting virtqueue
# The 2012 RFC's AUTO_BALLOON reused bit 2; it was never merged, so it gets a bit of its own here.
VIRTIO_BALLOON_F_AUTO_BALLOON = 16
# A scenario's `features` spell the bits like this:
FEATURES = {
    "must_tell_host": VIRTIO_BALLOON_F_MUST_TELL_HOST,
    "stats_vq": VIRTIO_BALLOON_F_STATS_VQ,
    "deflate_on_oom": VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
    "free_page_hint": VIRTIO_BALLOON_F_FREE_PAGE_HINT,
    "page_poison": VIRTIO_BALLOON_F_PAGE_POISON,
    "free_page_reporting": VIRTIO_BALLOON_F_REPORTING,
    "auto_balloon": VIRTIO_BALLOON_F_AUTO_BALLOON,
}

# --- virtio_balloon stats tags: VIRTIO_BALLOON_S_SWAP_IN = 0 ... --------------------------------
# In tag order: the header's name, and the key of a policy's ``view.stats`` (QEMU's guest-stats
# names). The kernel fills them in update_balloon_stats(); swap and memory figures are in bytes,
# the others are counts.
STATS = (("SWAP_IN", "swap_in"), ("SWAP_OUT", "swap_out"), ("MAJFLT", "major_faults"),
         ("MINFLT", "minor_faults"), ("MEMFREE", "free_memory"), ("MEMTOT", "total_memory"),
         ("AVAIL", "available_memory"), ("CACHES", "disk_caches"),
         ("HTLB_PGALLOC", "hugetlb_allocations"), ("HTLB_PGFAIL", "hugetlb_failures"),
         ("OOM_KILLS", "oom_kills"), ("ALLOC_STALL", "alloc_stalls"),
         ("ASYNC_SCAN", "async_scans"), ("DIRECT_SCAN", "direct_scans"),
         ("ASYNC_RECLAIM", "async_reclaims"), ("DIRECT_RECLAIM", "direct_reclaims"))
define(globals(), "VIRTIO_BALLOON_S_", [tag for tag, _ in STATS])
VIRTIO_BALLOON_S_NR = len(STATS)
STATS_TAGS = tuple(key for _, key in STATS)

# --- memory.pressure_level (enum vmpressure_levels): VMPRESSURE_LOW = 0 ... ----------------------
VMPRESSURE_LEVELS = ("low", "medium", "critical")
VMPRESSURE_LEVEL = define(globals(), "VMPRESSURE_", VMPRESSURE_LEVELS)
