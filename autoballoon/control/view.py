"""What a host policy sees: the :class:`HostView`, and the names of what is in it.

One home for the vocabulary policies use: the virtio_balloon stats keys (``STATS_TAGS``, in tag
order) and the host vmpressure levels (``VMPRESSURE_LOW/MEDIUM/CRITICAL``), from
:mod:`autoballoon.uapi`. Importing this module loads no numba.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from autoballoon.uapi import (STATS_TAGS, VMPRESSURE_CRITICAL, VMPRESSURE_LEVEL, VMPRESSURE_LEVELS,
                              VMPRESSURE_LOW, VMPRESSURE_MEDIUM)

__all__ = ["HostView", "STATS_TAGS", "VMPRESSURE_LEVEL", "VMPRESSURE_LEVELS", "VMPRESSURE_LOW",
           "VMPRESSURE_MEDIUM", "VMPRESSURE_CRITICAL"]


@dataclass(frozen=True)
class HostView:
    """What the host knows at ``now_ns``. Per-guest tuples are indexed like ``names``.

    ``stats`` is the virtio_balloon stats virtqueue as QEMU last polled it (STATS_TAGS keys; may be
    a poll interval old) — what a real host daemon sees. ``meminfo`` is the guest's own
    /proc/meminfo right now: an oracle that no real host has, offered for studies of ideal policies.
    """
    now_ns: int
    tick_ns: int
    names: tuple[str, ...]
    ram_size: tuple[int, ...]               # bytes
    target: tuple[int, ...]                 # current QEMU target: guest memory after ballooning
    actual: tuple[int, ...]                 # QEMU 'actual': ram_size - pages in the balloon
    stats: tuple[Mapping[str, int], ...]
    meminfo: tuple[Mapping[str, int], ...]
    host_meminfo: Mapping[str, int]
    host_events: tuple[int, ...]            # host vmpressure levels since the last tick (VMPRESSURE_*)
