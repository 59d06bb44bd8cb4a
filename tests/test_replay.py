"""Replay of bundled real traces through the guest model (closed loop, golden numbers)."""
from pathlib import Path

import pytest

from machines import MS, MiB, S, guest, run, scenario

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


def _tiny_build(tmp_path):
    """Three first touches 10, 20 and 30 ms apart, then the exit 40 ms later: 100 ms of trace."""
    from autoballoon.trace import AccessTrace, save
    from autoballoon.trace.ops import OP_EXIT, OP_WRITE
    t = AccessTrace([10 * MS, 20 * MS, 30 * MS, 40 * MS], [0, 1, 2, 0],
                    [OP_WRITE, OP_WRITE, OP_WRITE, OP_EXIT])
    return str(save(t, tmp_path / "tiny.parquet"))


@pytest.mark.parametrize("repeat", [1, 3])
def test_completion_time_is_the_clock_at_the_trace_end(tmp_path, repeat):
    """Started at 250 ms, the trace ends at 250 ms + repeat x 100 ms + the stalls of its faults:
    the summary's finish_s, and elapsed_s = finish_s - start (the build time)."""
    from autoballoon import simulate
    w = WorkloadSpec(kind="trace", path=_tiny_build(tmp_path), start_ns=250 * MS, repeat=repeat)
    row = simulate(scenario(guest(workload=w), duration=1 * S)).summary.iloc[0]
    # the exit frees the process's pages: every repetition faults them in again
    assert row["pgfault"] == 3 * repeat and row["stall_seconds"] > 0
    assert row["finish_s"] == pytest.approx(0.25 + 0.1 * repeat + row["stall_seconds"],
                                            abs=1e-12)
    assert row["elapsed_s"] == pytest.approx(row["finish_s"] - 0.25, abs=1e-12)


def test_completion_time_is_missing_for_a_workload_that_does_not_end(tmp_path):
    from autoballoon import simulate
    w = WorkloadSpec(kind="trace", path=_tiny_build(tmp_path), loop=True)
    s = simulate(scenario(guest(workload=w), duration=1 * S)).summary
    assert s["finish_s"].isna().all() and s["elapsed_s"].isna().all()


def test_start_jitter_delays_the_start_by_a_seeded_random_time(tmp_path):
    """start_jitter = 1 s: the build starts up to 1 s after its start, at a time the seed
    decides; elapsed_s (the build time) counts from there."""
    from autoballoon import simulate
    w = WorkloadSpec(kind="trace", path=_tiny_build(tmp_path), start_ns=250 * MS,
                     start_jitter_ns=1 * S)
    rows = [simulate(scenario(guest(workload=w), duration=2 * S, seed=seed)).summary.iloc[0]
            for seed in (1, 2, 3)]
    delays = [r["finish_s"] - r["elapsed_s"] - 0.25 for r in rows]
    assert all(0 <= d < 1 for d in delays) and len(set(delays)) == 3
    for r in rows:
        assert r["elapsed_s"] == pytest.approx(0.1 + r["stall_seconds"], abs=1e-12)
