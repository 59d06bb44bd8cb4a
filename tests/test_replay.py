"""Replay of bundled real traces through the guest model (closed loop, golden numbers)."""
from pathlib import Path

from machines import MiB, S, guest, run, scenario

from autoballoon.scenario.spec import WorkloadSpec

DATA = Path(__file__).resolve().parent.parent / "data"


def replay(name, memory, duration=2 * S):
    w = WorkloadSpec(kind="trace", path=str(DATA / name))
    return run(scenario(guest(memory=memory, workload=w), duration=duration))


def test_lackey_trace_replays_exactly_and_finishes():
    m = replay("lackey/tiny.parquet", 16 * MiB)
    v, mi = m.vmstat(0), m.meminfo(0)
    assert mi["alive"] == 0                        # reached the end of the trace
    assert v["progress"] == 124_691                # every access but the final exit
    assert v["pgfault"] == 123                     # one first touch per page, nothing evicted
    assert mi["AnonPages"] == 0                    # OP_EXIT freed the process's memory


def test_recorded_sqlite_trace_under_memory_pressure_swaps():
    roomy = replay("traces/sqlite.parquet", 256 * MiB, duration=5 * S).vmstat(0)
    tight = replay("traces/sqlite.parquet", 24 * MiB, duration=5 * S).vmstat(0)
    assert roomy["pswpout"] == roomy["pswpin"] == 0         # file misses are its only I/O
    assert tight["pswpout"] + tight["pgsteal_kswapd"] + tight["pgsteal_direct"] > 0
    assert tight["stall_ns"] > roomy["stall_ns"]
