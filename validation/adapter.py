"""Drive a real QEMU guest from an autoballoon host policy: a HostView filled from QMP.

The simulator calls ``policy.observe(view)`` once per control tick with a
:class:`autoballoon.HostView`; the harness (validation/run.py) does the same, with the view
filled from what QEMU tells a real host daemon:

- ``actual``  — ``query-balloon``'s ``actual`` (bytes of guest memory after ballooning);
- ``target``  — the last target the harness set with the QMP ``balloon`` command;
- ``stats``   — ``qom-get /machine/peripheral/balloon0 guest-stats`` (the virtio stats
  virtqueue, polled by QEMU every ``guest-stats-polling-interval`` seconds), renamed to the
  model's STATS_TAGS. A tag the guest did not send (QEMU reports -1; a 6.1 guest sends only
  the first ten tags: no oom_kills, alloc_stalls or scan/reclaim counts) is left out;
- ``meminfo`` — the guest's /proc/meminfo from the guest's own sampler (the same oracle the
  model offers; in bytes, the kernel's key names);
- ``host_meminfo`` — the host's /proc/meminfo (MemTotal, MemFree, Used, SwapTotal, SwapFree);
- ``host_events`` — always empty (the harness does not listen to host vmpressure).

So the model and the real guest run literally the same policy object code.
"""
from __future__ import annotations

from autoballoon import HostView

# QEMU's guest-stats names (hw/virtio/virtio-balloon.c balloon_stat_names) -> model STATS_TAGS
QEMU_STATS = {
    "stat-swap-in": "swap_in", "stat-swap-out": "swap_out",
    "stat-major-faults": "major_faults", "stat-minor-faults": "minor_faults",
    "stat-free-memory": "free_memory", "stat-total-memory": "total_memory",
    "stat-available-memory": "available_memory", "stat-disk-caches": "disk_caches",
    "stat-htlb-pgalloc": "hugetlb_allocations", "stat-htlb-pgfail": "hugetlb_failures",
    # newer QEMU (9.x) and guests (6.12+) only
    "stat-oom-kills": "oom_kills", "stat-alloc-stalls": "alloc_stalls",
    "stat-async-scans": "async_scans", "stat-direct-scans": "direct_scans",
    "stat-async-reclaims": "async_reclaims", "stat-direct-reclaims": "direct_reclaims",
}


def stats_from_qmp(guest_stats: dict | None) -> dict[str, int]:
    """``qom-get ... guest-stats`` → {STATS_TAG: value}, leaving out tags the guest never sent."""
    out: dict[str, int] = {}
    if not guest_stats:
        return out
    for qname, value in (guest_stats.get("stats") or {}).items():
        tag = QEMU_STATS.get(qname)
        if tag is not None and value is not None and int(value) >= 0:
            out[tag] = int(value)
    return out


def host_meminfo() -> dict[str, int]:
    """The host's /proc/meminfo in bytes, with the keys the model's host_meminfo has."""
    raw: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            parts = v.split()
            if parts:
                raw[k] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return {"MemTotal": raw.get("MemTotal", 0), "MemFree": raw.get("MemFree", 0),
            "Used": raw.get("MemTotal", 0) - raw.get("MemFree", 0),
            "SwapTotal": raw.get("SwapTotal", 0), "SwapFree": raw.get("SwapFree", 0)}


def make_view(now_ns: int, tick_ns: int, name: str, ram: int, target: int, actual: int,
              stats: dict[str, int], meminfo: dict[str, int]) -> HostView:
    """One guest's HostView, as the simulator's control loop builds it."""
    return HostView(now_ns=now_ns, tick_ns=tick_ns, names=(name,), ram_size=(ram,),
                    target=(target,), actual=(actual,), stats=(dict(stats),),
                    meminfo=(dict(meminfo),), host_meminfo=host_meminfo(), host_events=())
