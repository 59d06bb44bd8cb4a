"""The control loop: the host side of the simulation, once per tick, in Python.

Like QEMU's main loop (or a MOM / pvestatd daemon) it wakes every ``run.tick``: the numba
machine runs all guests, their balloon drivers and the host up to the tick
(``Machine.advance``); then the host policy reads a :class:`HostView` and may set new balloon
targets (QEMU's ``balloon`` command), the scenario's ``[[schedule]]`` is applied, and the
recorder takes one row per guest and one for the host. Times are simulated nanoseconds.
``MachineAPI`` is what the loop, the view and the recorder use of a machine: the real
:class:`~autoballoon.machine.Machine` and the tests' fake both provide it.

Ctrl-C: the machine returns to Python often (``Machine.advance`` runs the kernel in short
chunks), so a KeyboardInterrupt arrives within a fraction of a second and leaves the loop as
:class:`Interrupted`, saying how far the run got; nothing of the run is kept.
"""
from __future__ import annotations

from typing import Protocol

from autoballoon.control.policies import Policy, check_policy, make_policy, policy_name
from autoballoon.control.recorder import Recorder
from autoballoon.control.view import ViewBuilder
from autoballoon.errors import SpecError
from autoballoon.scenario import parse
from autoballoon.scenario.spec import Scenario

# Memory one recorded row takes until the run ends (a dict of ~60 counters, then DataFrame
# cells); tests/test_reliability.py measures the real recorder against it.
ROW_BYTES = 8192


class PolicyError(RuntimeError):
    """A policy returned something that is not a valid target."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says how far the simulation got."""


class MachineAPI(Protocol):
    """The machine as the control layer sees it (guests indexed 0..n-1 like ``names``)."""
    names: list[str]

    def advance(self, until_ns: int) -> None: ...
    def ram_size(self, g: int) -> int: ...
    def set_target(self, g: int, target: int) -> None: ...
    def vmstat(self, g: int) -> dict[str, int]: ...
    def meminfo(self, g: int) -> dict[str, int]: ...
    def workload_start_ns(self, g: int) -> int: ...
    def finished_ns(self, g: int) -> int | None: ...
    def balloon_stats(self, g: int) -> dict[str, int]: ...
    def host_vmstat(self) -> dict[str, int]: ...
    def host_meminfo(self) -> dict[str, int]: ...
    def host_pressure_events(self) -> list[int]: ...
    # read by HostView on a policy's demand (control/view.py documents them)
    def committed_as(self, g: int) -> int: ...
    def zoneinfo(self, g: int) -> dict[str, int]: ...
    def host_usage(self, g: int) -> dict[str, int]: ...
    def host_zoneinfo(self) -> dict[str, int]: ...
    def test_and_clear_young(self, g: int, frames): ...


def load_scenario(source) -> Scenario:
    """Parse a scenario (a path or TOML text; a Scenario is returned unchanged) and check that
    its policy exists and takes its parameters, so that every error comes before a run, with
    the key and its line."""
    return parse.load_scenario(source, check=check_policy)


def resolve_policy(scenario: Scenario, policy) -> Policy:
    """``policy``: None (the scenario's own, with its parameters), a name, or a Policy."""
    if policy is None:
        return make_policy(scenario)
    if isinstance(policy, str):
        # the scenario's parameters go with the scenario's own policy only
        params = scenario.host.policy_params if policy == scenario.host.policy else {}
        return make_policy(scenario, policy, params)
    return policy


def control_loop(scenario: Scenario, machine: MachineAPI, policy: Policy, recorder: Recorder,
                 progress: bool = True) -> None:
    """Run ``scenario.run.duration`` tick by tick. The progress bar (tqdm) appears only if the
    run lasts more than a few seconds of wall time."""
    run = scenario.run
    n = len(machine.names)
    n_ticks = -(-run.duration_ns // run.tick_ns)
    _check_record_fits(scenario, n_ticks, n)
    ram = [machine.ram_size(g) for g in range(n)]
    # The host device's target, QEMU's meaning. Initial targets are set explicitly so the run
    # does not depend on whether the machine applies GuestSpec.target itself.
    target = [g.target if g.target else ram[i] for i, g in enumerate(scenario.guests)]
    for g in range(n):
        if target[g] != ram[g]:
            machine.set_target(g, target[g])
    schedule = sorted(scenario.schedule, key=lambda e: e.at_ns)   # stable: file order on ties
    next_entry = 0
    view_at = ViewBuilder(machine, ram)
    bar = _progress_bar(n_ticks, policy_name(policy), progress)
    now = 0
    try:
        while True:
            events = tuple(machine.host_pressure_events())
            if now < run.duration_ns:       # no decision after the end: it would act on nothing
                view = view_at(now, run.tick_ns, target, events)
                new = dict(policy.observe(view) or {})
                while next_entry < len(schedule) and schedule[next_entry].at_ns <= now:
                    entry = schedule[next_entry]
                    for g, spec in enumerate(scenario.guests):
                        if entry.guest in (spec.name, spec.group):
                            new[g] = entry.target          # an operator's command wins
                    next_entry += 1
                for g in sorted(new):
                    # every command reaches the guest, even one that repeats the target: QEMU
                    # notifies a config change, which restarts the guest's balloon work
                    target[g] = _check_target(policy, g, new[g], ram, now)
                    machine.set_target(g, target[g])
            recorder.record(now, target, events)
            if now >= run.duration_ns:
                break
            now = min(now + run.tick_ns, run.duration_ns)
            machine.advance(now)
            bar.update(1)
    except KeyboardInterrupt as e:
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(f"at {now / 1e9:g} s of {run.duration_ns / 1e9:g} s simulated") \
            from None
    finally:
        bar.close()


def _check_record_fits(scenario: Scenario, n_ticks: int, n: int) -> None:
    """Refuse, before the run, a record (a row per tick and guest, and the host) that cannot
    fit in memory, naming run.tick and the estimate."""
    from autoballoon.machine.state import available_memory
    rows = (n_ticks + 1) * (n + 1)
    need, avail = rows * ROW_BYTES, available_memory()
    if avail is not None and need > avail:
        e = SpecError(f"run.tick: {n_ticks:,} ticks of {n + 1} rows would take "
                      f"~{need / 2**30:.1f} GiB to record (estimate), more than the "
                      f"{avail / 2**30:.1f} GiB of memory available; use a longer run.tick or "
                      f"a shorter run.duration")
        raise parse.located(scenario, e)


def _check_target(policy: Policy, g: int, value, ram: list[int], now: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value:
        raise PolicyError(f"policy {policy_name(policy)!r} at t={now / 1e9:.3f}s returned target "
                          f"{value!r} for guest {g}: expected an int number of bytes > 0")
    return min(value, ram[g])       # QEMU clamps a target above ram_size to ram_size


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm  # not tqdm.auto: that needs ipywidgets in notebooks
    # delay: no bar at all for runs shorter than a few seconds of wall time
    return tqdm(total=total, desc=desc, unit="tick", disable=not enabled, delay=3.0,
                leave=False)
