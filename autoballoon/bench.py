"""The standard benchmark: a seeded Zipf(0.9) trace of 10 M accesses over 1 M pages, replayed
through the guest model with memory at 10 % of the footprint, against libCacheSim's LRU on the
same trace in the same run.

``autoballoon bench --compile`` instead compiles the kernels afresh (an empty numba cache) for a short
run of the default scenario and prints, per kernel, the seconds numba spent compiling it
(``compile_bench``).

``autoballoon bench --scale`` instead runs the full-scale scenario (``rfc-v2``: 35 x 1 GiB guests,
a whole kernel build each) once and prints simulated seconds, wall seconds, their ratio, trace
events per second and the peak RSS (``scale_bench``).

``autoballoon bench --sweep`` instead times a 16-point sweep of the default scenario on a local Dask
cluster of 1 worker and of N (one per core) and prints the speed-up (``sweep_bench``).

``autoballoon bench --json`` prints one JSON object: events, autoballoon_events_per_s,
libcachesim_lru_events_per_s, ratio (ours / theirs), bytes_per_page, plus the miss ratios of both
(a sanity check that the two simulate comparable caches: the guest's major-fault ratio is not an
LRU miss ratio, but it should be near it). Each figure is the fastest of ``--repeat`` runs
(default 3). Speed is measured here, never in tests.

For scale it also times ``bare_lru``: the least a page-level LRU can do (a page table and one
doubly linked list, nothing else) compiled with numba, on the same trace in the same run. Its
ratio to libCacheSim is the ceiling for any model written this way on this machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit
from numba.core import event

from autoballoon import perfmap
from autoballoon.scenario.spec import (
    PAGE_SIZE, GuestSpec, HostSpec, RunSpec, Scenario, SwapSpec, WorkloadSpec)
from autoballoon.trace import AccessTrace
from autoballoon.trace.cachesim import ORACLE_GENERAL
from autoballoon.trace.ops import OP_WRITE
from autoballoon.trace.synth import zipf_ranks

EVENTS = 10_000_000
PAGES = 1_000_000
ALPHA = 0.9
GAP_NS = 100


def zipf_pages(n: int, pages: int, alpha: float, seed: int) -> np.ndarray:
    """n page numbers, Zipf(alpha) by rank over ``pages`` pages, ranks scattered over pages."""
    rng = np.random.default_rng(seed)
    ranks = zipf_ranks(rng, pages, n, alpha)
    return rng.permutation(pages)[ranks].astype(np.int64)


def bench_scenario(pages: int, memory_fraction: float) -> Scenario:
    mem = max(int(pages * memory_fraction), 4096) * PAGE_SIZE
    wl = WorkloadSpec(kind="trace", path="<bench>")
    guest = GuestSpec(name="bench", memory=mem, workload=wl,
                      swap=SwapSpec(size=pages * PAGE_SIZE * 5 // 4), features=frozenset())
    return Scenario(run=RunSpec(duration_ns=10**18, tick_ns=10**17, slice_ns=10**17),
                    host=HostSpec(memory=2 * mem), guests=(guest,))


@njit(nogil=True)
def bare_lru(trace, pages, frames):
    """A minimal LRU page cache: returns the number of misses. Not cached on disk: it compiles
    in a second, and a cache beside the sources would escape the kernels' hashed directory."""
    where = np.full(pages, -1, np.int32)          # page -> frame
    owner = np.full(frames, -1, np.int64)         # frame -> page
    nxt = np.full(frames, -1, np.int32)
    prv = np.full(frames, -1, np.int32)
    head = tail = -1
    used = misses = 0
    for page in trace:
        f = where[page]
        if f >= 0:
            if f == head:
                continue
            a, b = prv[f], nxt[f]                 # unlink, then push at the head
            nxt[a] = b
            if b >= 0:
                prv[b] = a
            else:
                tail = a
        else:
            misses += 1
            if used < frames:
                f = used
                used += 1
            else:
                f = tail
                tail = prv[f]
                if tail >= 0:
                    nxt[tail] = -1
                where[owner[f]] = -1
            owner[f] = page
            where[page] = f
            if tail < 0:
                tail = f
        prv[f] = -1
        nxt[f] = head
        if head >= 0:
            prv[head] = f
        head = f
    return misses


def run_bare_lru(pages_arr: np.ndarray, pages: int, memory_fraction: float):
    frames = int(pages * memory_fraction)
    bare_lru(pages_arr[:1000], pages, frames)     # compile
    t0 = time.perf_counter()
    misses = bare_lru(pages_arr, pages, frames)
    return len(pages_arr), time.perf_counter() - t0, misses / len(pages_arr)


def run_autoballoon(pages_arr: np.ndarray, pages: int, memory_fraction: float):
    from autoballoon.machine import Machine
    from autoballoon.machine.state import bytes_per_page
    n = len(pages_arr)
    stream = AccessTrace(np.full(n, GAP_NS, np.int64), pages_arr, np.full(n, OP_WRITE, np.uint8),
                         meta={"source": "autoballoon bench: Zipf(0.9)"}, where="bench")
    machine = Machine(bench_scenario(pages, memory_fraction), traces={"<bench>": stream})
    machine.advance(1_000_000)            # compile and warm up on the first events
    t0 = time.perf_counter()
    machine.advance(10**17)
    dt = time.perf_counter() - t0
    v = machine.vmstat(0)
    return v["progress"], dt, v, bytes_per_page(machine.m)


def oracle_general_file(pages_arr: np.ndarray, path: str) -> str:
    """The trace as a libCacheSim oracleGeneral file (1,000 requests per second, 4 KiB each)."""
    rec = np.zeros(len(pages_arr), dtype=ORACLE_GENERAL)
    rec["time"] = np.arange(len(pages_arr)) // 1000
    rec["obj_id"] = pages_arr
    rec["obj_size"] = PAGE_SIZE
    rec["next_access_vtime"] = -1
    rec.tofile(path)
    return path


def run_libcachesim(path: str, pages: int, memory_fraction: float):
    import libcachesim as lcs
    cache = lcs.LRU(cache_size=int(pages * memory_fraction) * PAGE_SIZE)
    reader = lcs.TraceReader(path, trace_type=lcs.TraceType.ORACLE_GENERAL_TRACE)
    t0 = time.perf_counter()
    miss_ratio, _ = cache.process_trace(reader)
    dt = time.perf_counter() - t0
    return reader.get_num_of_req(), dt, miss_ratio


def best_of(repeat: int, run, *args):
    """The fastest of ``repeat`` runs (timeit's rule: the slower ones measure the machine's
    other load, not the code). Every run returns (events, seconds, ...)."""
    return min((run(*args) for _ in range(repeat)), key=lambda r: r[1])


def bench(events: int = EVENTS, pages: int = PAGES, memory_fraction: float = 0.10,
          seed: int = 1, repeat: int = 3) -> dict:
    trace = zipf_pages(events, pages, ALPHA, seed)
    n, dt, v, bpp = best_of(repeat, run_autoballoon, trace, pages, memory_fraction)
    out = {"events": n, "repeat": repeat, "autoballoon_seconds": round(dt, 3),
           "autoballoon_events_per_s": round(n / dt),
           "autoballoon_major_fault_ratio": round(v["pgmajfault"] / n, 4),
           "bytes_per_page": round(bpp, 2)}
    bn, bdt, bmiss = best_of(repeat, run_bare_lru, trace, pages, memory_fraction)
    out.update({"bare_lru_events_per_s": round(bn / bdt), "bare_lru_miss_ratio": round(bmiss, 4)})
    try:
        with tempfile.TemporaryDirectory() as d:
            path = oracle_general_file(trace, os.path.join(d, "bench.oracleGeneral.bin"))
            ln, ldt, miss = best_of(repeat, run_libcachesim, path, pages, memory_fraction)
        out.update({"libcachesim_lru_events_per_s": round(ln / ldt),
                    "libcachesim_lru_miss_ratio": round(miss, 4),
                    "ratio": round((n / dt) / (ln / ldt), 2),
                    "bare_lru_ratio": round((bn / bdt) / (ln / ldt), 2)})
    except ImportError:
        out.update({"libcachesim_lru_events_per_s": None, "ratio": None,
                    "note": "libcachesim not installed: pip install 'autoballoon[bench]'"})
    return out


def scale_bench(scenario: str = "rfc-v2", policy: str | None = None,
                overrides: dict | None = None) -> dict:
    """One run of ``scenario`` (a bundled name or a path) as ``simulate`` does it, per-tick
    recording included. The kernels are loaded (and the traces read) by a one-tick run of the
    same scenario first, so ``wall_s`` is the run; ``boot_s`` is the Machine's set-up (state
    allocation, boot). ``events``: trace events the guests replayed (``progress``: accesses, not
    the frees and exits between them). ``peak_rss_mib``: the process's high-water RSS (getrusage),
    the whole process. ``cpu_s``: the CPU time the process got during the run (user + system);
    on a shared machine ``wall_s`` also counts the time other processes had the CPU, and
    ``sim_s_per_cpu_s`` is the speed the code would have on a core of its own."""
    import resource

    from autoballoon.control.loop import control_loop, load_scenario, resolve_policy
    from autoballoon.control.policies.base import policy_name
    from autoballoon.control.recorder import Recorder
    from autoballoon.machine import Machine
    from autoballoon.results.run import with_overrides
    from autoballoon.scenario.bundled import scenario_path
    sc = with_overrides(load_scenario(scenario_path(scenario)), overrides)
    pol = resolve_policy(sc, policy)
    tick = sc.run.tick_ns
    warm = Machine(dataclasses.replace(sc, run=dataclasses.replace(sc.run, duration_ns=tick)))
    warm.advance(tick)
    del warm
    t0 = time.perf_counter()
    machine = Machine(sc)
    boot = time.perf_counter() - t0
    recorder = Recorder(machine, sc)
    t0, c0 = time.perf_counter(), time.process_time()
    control_loop(sc, machine, pol, recorder, False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, summary = recorder.frames(policy_name(pol))
    guests, host = summary[summary["guest"] != "host"], summary[summary["guest"] == "host"].iloc[0]
    events = int(guests["progress"].sum())
    sim = sc.run.duration_ns / 1e9
    return {"scenario": scenario, "policy": policy_name(pol), "guests": len(sc.guests),
            "simulated_s": sim, "wall_s": round(wall, 1), "boot_s": round(boot, 1),
            "sim_s_per_wall_s": round(sim / wall, 2), "cpu_s": round(cpu, 1),
            "sim_s_per_cpu_s": round(sim / cpu, 2), "events": events,
            "events_per_s": round(events / wall), "events_per_cpu_s": round(events / cpu),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "host_pswpout": int(host["pswpout"]), "host_pswpin": int(host["pswpin"]),
            "builds_finished": int(guests["elapsed_s"].notna().sum()),
            "build_s_mean": (round(float(guests["elapsed_s"].mean()), 1)
                             if guests["elapsed_s"].notna().any() else None),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


SWEEP_GRID = {"host.memory": ["512MiB", "576MiB", "640MiB", "704MiB"],
              "host.policy_params.inflate": ["4MiB", "8MiB", "16MiB", "32MiB"]}


def sweep_bench(workers: int | None = None) -> dict:
    """Wall seconds of a 16-point sweep of the default scenario (qemu-auto) on a local Dask
    cluster of 1 worker and of ``workers`` (default: one per core), each cluster started and
    warmed (numba cache loaded) before the clock starts, each sweep into a fresh directory.
    ``cpu_share``: the CPU time the runs got per worker and wall second, which says how much of
    the machine other processes took (the speed-up means something only near 1.0)."""
    from dask.distributed import Client, LocalCluster

    from autoballoon.results.sweep import sweep, warm_up
    n = workers or os.cpu_count() or 1
    out = {"points": 16, "workers": n, "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    for k in (1, n):
        t0 = time.perf_counter()
        with LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(warm_up)
            start = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                df = sweep(grid=SWEEP_GRID, out=d, client=client, progress=False)
                wall = time.perf_counter() - t0
                cpu = sum(json.loads(p.read_text())["sweep"]["cpu_seconds"]
                          for p in Path(d, "_manifests").glob("*.json"))
        assert df.attrs["runs"] == 16 and df.attrs["failed"] == 0, df.attrs
        tag = f"{k}_worker" + ("s" if k > 1 else "")
        out[f"wall_seconds_{tag}"] = round(wall, 2)
        out[f"startup_seconds_{tag}"] = round(start, 2)
        # CPU the workers got while running points, per worker and wall second: 1.0 = a
        # core each all the time; less = the machine's other processes took the rest
        out[f"cpu_share_{tag}"] = round(cpu / (wall * k), 2)
    out["speedup"] = round(out["wall_seconds_1_worker"] / out[f"wall_seconds_{n}_workers"], 2) \
        if n > 1 else 1.0
    out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


class _CompileTimer(event.Listener):
    """A numba ``numba:compile`` listener: per kernel, seconds spent compiling it without the
    kernels it calls (numba compiles a callee while typing its caller: the events nest)."""

    def __init__(self):
        self.stack, self.kernels = [], {}

    def on_start(self, event):
        self.stack.append([time.perf_counter(), 0.0])

    def on_end(self, event):
        start, nested = self.stack.pop()
        total = time.perf_counter() - start
        if self.stack:
            self.stack[-1][1] += total
        py_func = event.data["dispatcher"].py_func
        name = f"{py_func.__module__}.{py_func.__qualname__}"
        row = self.kernels.setdefault(name, {"seconds": 0.0, "signatures": 0})
        row["seconds"] += total - nested
        row["signatures"] += 1


def compile_bench(duration: str = "200ms") -> dict:
    """Compile every kernel of a ``duration`` run of the default scenario into an empty cache
    (a first start) and say where the time went: wall seconds of the run (compile + run), the
    sum of the kernels' compile seconds, and per kernel its own seconds and number of
    signatures (more than one: compiled again for other argument types), slowest first. Must
    run before any kernel module is imported (``main`` sees to that)."""
    cache = perfmap.fresh_cache()
    timer = _CompileTimer()
    try:
        t0 = time.perf_counter()
        with event.install_listener("numba:compile", timer):
            from autoballoon.results.run import simulate, with_overrides
            from autoballoon.scenario.parse import default_scenario_path, load_scenario
            scenario = with_overrides(load_scenario(default_scenario_path()),
                                      {"run.duration": duration})
            simulate(scenario, progress=False)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    kernels = dict(sorted(((k, {"seconds": round(v["seconds"], 3), "signatures": v["signatures"]})
                           for k, v in timer.kernels.items()), key=lambda kv: -kv[1]["seconds"]))
    return {"wall_seconds": round(wall, 2),
            "compile_seconds": round(sum(v["seconds"] for v in timer.kernels.values()), 2),
            "kernels_compiled": len(kernels), "kernels": kernels}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="autoballoon bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--events", type=int, default=EVENTS)
    ap.add_argument("--pages", type=int, default=PAGES)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    ap.add_argument("--perf-map", action="store_true",
                    help="compile afresh; write /tmp/perf-<pid>.map for perf (see perfmap.py)")
    ap.add_argument("--sweep", action="store_true",
                    help="instead: a 16-point sweep of the default scenario on 1 and on N Dask "
                         "workers (wall seconds, speed-up)")
    ap.add_argument("--workers", type=int, help="N for --sweep (default: one per core)")
    ap.add_argument("--compile", action="store_true",
                    help="instead: compile the kernels afresh for a short default run and print "
                         "the compile seconds per kernel (JSON)")
    ap.add_argument("--scale", nargs="?", const="rfc-v2", metavar="SCENARIO",
                    help="instead: one run of the full-scale scenario (default rfc-v2: 35 x 1 GiB "
                         "guests) - simulated and wall seconds, events/s, peak RSS")
    ap.add_argument("--policy", help="--scale: the policy (default: the scenario's)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="--scale: override a scenario key (repeatable)")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    if a.sweep:
        print(json.dumps(sweep_bench(a.workers)))
        return 0
    if a.compile:
        print(json.dumps(compile_bench(), indent=1))
        return 0
    cache = perfmap.fresh_cache() if a.perf_map else None
    if a.scale:
        from autoballoon.scenario.document import parse_assignment
        out = scale_bench(a.scale, a.policy, dict(parse_assignment(x) for x in a.overrides))
        a.json = True
    else:
        out = bench(a.events, a.pages, seed=a.seed, repeat=a.repeat)
    if cache:
        path, n = perfmap.write()
        shutil.rmtree(cache, ignore_errors=True)
        print(f"{n} kernel symbols written to {path}", file=sys.stderr)
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:32s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
