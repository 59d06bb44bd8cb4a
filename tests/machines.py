"""Small scenarios for the kernel tests, built directly from the spec dataclasses."""
from autoballoon.machine import Machine
from autoballoon.scenario.spec import (
    GuestSpec, HostSpec, PhaseSpec, RunSpec, Scenario, SwapSpec, WorkloadSpec)

MiB = 2**20
MS = 1_000_000
S = 1_000_000_000


def phases(*specs, **kw):
    return WorkloadSpec(kind="phases", phases=tuple(PhaseSpec(**p) for p in specs), **kw)


# Tiny guests test mechanisms: by default they give the kernel no memory of its own (a real
# kernel keeps ~38 MiB at boot) and have no THP watermark rule; tests of those pass them.
BARE = dict(reserved=0, kernel_memory=0, thp="never")


def guest(name="vm", memory=16 * MiB, swap=32 * MiB, workload=None, **kw):
    workload = workload or phases(dict(length=8 * MiB, passes=2))
    return GuestSpec(name=name, memory=memory, swap=SwapSpec(size=swap), workload=workload,
                     **{**BARE, **kw})


def scenario(*guests, host_memory=1024 * MiB, host_swap=0, duration=2 * S, seed=1, policy="none",
             tick=None):
    tick = min(100 * MS, duration) if tick is None else tick      # as the parser defaults it
    return Scenario(run=RunSpec(duration_ns=duration, tick_ns=tick, seed=seed,
                                slice_ns=min(MS, tick)),
                    host=HostSpec(memory=host_memory, swap=SwapSpec(size=host_swap),
                                  policy=policy, **BARE),
                    guests=tuple(guests))


def run(sc, debug=True, until=None):
    """Advance tick by tick (checking invariants after each in debug mode)."""
    m = Machine(sc, debug=debug)
    end = until or sc.run.duration_ns
    t = 0
    while t < end:
        t = min(t + sc.run.tick_ns, end)
        m.advance(t)
    return m
