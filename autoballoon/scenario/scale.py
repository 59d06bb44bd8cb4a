"""Shorter versions of a scenario, for smoke tests and quick looks: :func:`shorten`."""
from __future__ import annotations

import dataclasses

from autoballoon.scenario.spec import Scenario
from autoballoon.units import format_duration


def _times(x: int | None, factor: float) -> int | None:
    return None if x is None else max(1, round(x * factor))


def shorten(scenario: Scenario, duration_ns: int) -> Scenario:
    """``scenario`` run for ``duration_ns`` with its timeline compressed to fit: phase durations,
    workload start delays (and their jitter) and schedule times are scaled by the same factor, so a guest that
    starts half-way through still starts half-way through. Sizes, think times and phases that
    end after a number of passes are unchanged (a pass takes as long as before)."""
    f = duration_ns / scenario.run.duration_ns
    guests = []
    for g in scenario.guests:
        w = g.workload
        phases = tuple(dataclasses.replace(p, duration_ns=_times(p.duration_ns, f))
                       for p in w.phases)
        start = _times(w.start_ns, f) if w.start_ns else 0
        jitter = _times(w.start_jitter_ns, f) if w.start_jitter_ns else 0
        guests.append(dataclasses.replace(g, workload=dataclasses.replace(
            w, phases=phases, start_ns=start, start_jitter_ns=jitter)))
    schedule = tuple(dataclasses.replace(e, at_ns=round(e.at_ns * f)) for e in scenario.schedule)
    # The manifest records `raw`: say there that this is not the file as written.
    note = f"shortened to {format_duration(duration_ns)} (timeline x {f:.3g})"
    raw = {**scenario.raw, "description": f"{scenario.raw.get('description', '')} [{note}]"}
    return dataclasses.replace(scenario, run=dataclasses.replace(scenario.run,
                                                                duration_ns=duration_ns),
                               guests=tuple(guests), schedule=schedule, raw=raw)
