"""The 6.1 mechanisms the fidelity work added, each checked where it changes what a user
measures: asynchronous swap writeback, read-then-write faults, file readahead windows, stall
time by cause. (The invariants, checked after every tick of these runs, add that stall by
cause sums to stall_ns.)"""
from dataclasses import replace

import pytest
from machines import MS, MiB, S, guest, phases, run, scenario

from autoballoon.machine.mm import readahead
from autoballoon.machine.mm.constants import VM_READAHEAD_PAGES
from autoballoon.scenario.spec import SwapSpec

PAGES = MiB // 4096


def swapping_guest(write_latency_ns):
    g = guest(memory=16 * MiB, workload=phases(dict(length=24 * MiB, passes=1)))
    return replace(g, swap=SwapSpec(size=32 * MiB, write_latency_ns=write_latency_ns))


def test_a_page_written_to_swap_is_freed_only_after_its_write_completes():
    """pageout() starts the write and puts the folio back (PG_reclaim); a later scan frees it
    once folio_rotate_reclaimable() moved it to the tail. With writes that take 1 s nothing
    written in the first half second can have been freed; with fast writes most are."""
    slow = run(scenario(swapping_guest(1 * S), duration=500 * MS)).vmstat(0)
    fast = run(scenario(swapping_guest(20_000), duration=500 * MS)).vmstat(0)
    assert slow["pswpout"] > 1000 and slow["pgsteal_kswapd"] + slow["pgsteal_direct"] == 0
    assert fast["pgsteal_kswapd"] + fast["pgsteal_direct"] > 1000


@pytest.mark.parametrize("kernel", ["6.1", "3.7"])
def test_a_write_after_a_read_swap_in_keeps_the_slot_on_6_1_and_frees_it_on_3_7(kernel):
    """A read fault maps a swapped-in page read-only and keeps its slot; the later write is a
    write-protect fault. 6.1's do_wp_page reuses the exclusive page and the stale slot stays
    (until reclaim or vm_swap_full); 3.x's reuse_swap_page frees it. Swap is never half full
    here, so 6.1 frees no slot at all."""
    rewritten = 8 * MiB
    g = guest(memory=16 * MiB, swap=64 * MiB, kernel=kernel, workload=phases(
        dict(length=24 * MiB, passes=1),
        dict(length=rewritten, passes=1, write_fraction=0.0),
        dict(length=rewritten, passes=1, write_fraction=1.0)))
    m = run(scenario(g, duration=3 * S))
    info, vm = m.meminfo(0), m.vmstat(0)
    slots_used = (info["SwapTotal"] - info["SwapFree"]) // 4096
    assert vm["pswpin"] >= rewritten // 4096
    freed = vm["pswpout"] - slots_used
    assert freed == (0 if kernel == "6.1" else rewritten // 4096)


@pytest.mark.nojit
def test_readahead_windows_grow_as_ondemand_readahead_does():
    """get_init_ra_size / get_next_ra_size of mm/readahead.c with ra_pages = 32 (128 KiB): a
    one-page read() starts a 4-page window, then 8, 16, 32, 32."""
    assert VM_READAHEAD_PAGES == 32
    size = readahead.get_init_ra_size(1, VM_READAHEAD_PAGES)
    sizes = [size]
    for _ in range(4):
        size = readahead.get_next_ra_size(size, VM_READAHEAD_PAGES)
        sizes.append(size)
    assert sizes == [4, 8, 16, 32, 32]
    assert readahead.get_init_ra_size(8, VM_READAHEAD_PAGES) == 16      # <= max/4: doubled
    assert readahead.get_init_ra_size(16, VM_READAHEAD_PAGES) == 32     # above: max


def test_sequential_read_is_read_in_windows_and_waits_less_than_page_by_page():
    """A sequential read() of a cold file is read in windows of up to 32 pages: pgpgin counts
    every page once, and the reader waits for far fewer reads than pages."""
    n = 32 * MiB
    g = guest(memory=64 * MiB, workload=phases(dict(length=n, passes=1, pattern="read")))
    vm = run(scenario(g, duration=2 * S)).vmstat(0)
    assert vm["pgpgin"] == 4 * (n // 4096)                       # KiB, each page once
    assert vm["pgmajfault"] == 0                                 # read() misses are not faults
    per_page = SwapSpec().read_latency_ns                       # the file disk's latency
    assert 0 < vm["stall_fileread_ns"] < (n // 4096) * per_page / 4


def test_stall_by_cause_names_where_a_swapping_guest_waits():
    """A guest thrashing on swap waits mostly for swap-in; its thrash time is part of it."""
    g = guest(memory=16 * MiB, swap=64 * MiB,
              workload=phases(dict(length=24 * MiB, passes=3, pattern="rand")))
    vm = run(scenario(g, duration=1 * S)).vmstat(0)
    assert vm["stall_swapin_ns"] > vm["stall_reclaim_ns"] > 0
    assert vm["stall_swapin_ns"] > vm["stall_ns"] / 2
    assert 0 < vm["thrash_ns"] <= vm["stall_swapin_ns"]
    assert vm["stall_fileread_ns"] == 0
    # the host backs each guest frame at its first touch (lazy allocation): a few host faults
    assert 0 < vm["stall_host_ns"] < vm["stall_swapin_ns"] / 10
