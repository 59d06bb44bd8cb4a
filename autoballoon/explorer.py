"""An interactive explorer for Jupyter (ipywidgets): pick a bundled scenario, the host's memory,
the overcommit, the policy and its parameter and the simulated duration; a short run re-runs
when a value changes (or on *Run*) and the figure updates. ``notebooks/explorer.ipynb`` shows it.

    from autoballoon.explorer import Explorer
    Explorer()              # in a notebook: the controls and the figure

The run is :func:`configure` + :func:`autoballoon.results.run.simulate`; ``Explorer.results``,
``.scenario`` and ``.figure`` hold the last one, so the explorer can be driven from Python too.
"""
from __future__ import annotations

import dataclasses

from autoballoon.control.loop import load_scenario
from autoballoon.control.policies import make_policy
from autoballoon.plots import plot_comparison
from autoballoon.results.run import simulate
from autoballoon.scenario.bundled import quick_scenarios
from autoballoon.scenario.scale import shorten
from autoballoon.scenario.spec import PAGE_SIZE, Scenario

MIB = 2**20
POLICIES = ("none", "static", "qemu-auto")


def configure(scenario: Scenario, host_mib: int, overcommit: float, policy: str,
              param: int, duration_s: float):
    """(scenario, policy) for one explorer run.

    The host gets ``host_mib`` MiB; every guest's memory is scaled by one factor so that the
    guests together have ``overcommit`` × the host's memory (each at least 16 MiB, whole MiB;
    within 1 % of the scenario's own sizes they are kept as written).
    ``param`` is the policy's knob: ``qemu-auto``'s inflate step (MiB); ``static``'s balloon,
    as a percentage of each guest's memory. Under ``none`` and ``static`` the guests run without
    AUTO_BALLOON (as in ``compare``: a static balloon must not deflate itself).
    """
    factor = overcommit * host_mib * MIB / sum(g.memory for g in scenario.guests)
    if abs(factor - 1) < 0.01:          # the slider's rounding: keep the sizes as written
        factor = 1.0
    guests = []
    for g in scenario.guests:
        memory = max(16, round(g.memory * factor / MIB)) * MIB
        features = g.features if policy not in ("none", "static") else g.features - {
            "auto_balloon"}
        guests.append(dataclasses.replace(g, memory=memory, target=None, features=features))
    scenario = dataclasses.replace(
        scenario, host=dataclasses.replace(scenario.host, memory=host_mib * MIB),
        guests=tuple(guests))
    scenario = shorten(scenario, round(duration_s * 1e9))
    params = {}
    if policy == "qemu-auto":
        params = {"inflate": f"{param}MiB"}
    elif policy == "static":
        params = {"targets": {g.name: max(PAGE_SIZE, g.memory * (100 - param) // 100
                                          // PAGE_SIZE * PAGE_SIZE) for g in guests}}
    return scenario, make_policy(scenario, policy, params)


class Explorer:
    """The widgets, the last run and its figure. Changing any control re-runs."""

    def __init__(self, scenario: str = "staggered", duration_s: float = 5.0,
                 run_now: bool = True):
        import ipywidgets as w

        self.base = {b.name: load_scenario(b.path) for b in quick_scenarios()}
        first = self.base[scenario]
        host_mib = first.host.memory // MIB
        over = sum(g.memory for g in first.guests) / first.host.memory
        style = {"description_width": "10em"}
        layout = w.Layout(width="32em")
        self.workload = w.Dropdown(options=list(self.base), value=scenario,
                                   description="scenario", style=style, layout=layout)
        self.host_mib = w.IntSlider(host_mib, min=128, max=2048, step=32,
                                    description="host memory (MiB)", style=style,
                                    layout=layout, continuous_update=False)
        self.overcommit = w.FloatSlider(round(over, 2), min=0.5, max=3.0, step=0.05,
                                        description="overcommit (guest RAM / host RAM)",
                                        style=style, layout=layout, continuous_update=False)
        self.policy = w.Dropdown(options=POLICIES, value="qemu-auto", description="policy",
                                 style=style, layout=layout)
        self.param = w.IntSlider(16, min=1, max=128, description="inflate step (MiB)",
                                 style=style, layout=layout, continuous_update=False)
        self.duration = w.FloatSlider(duration_s, min=1, max=30, step=1,
                                      description="simulated time (s)", style=style,
                                      layout=layout, continuous_update=False)
        self.button = w.Button(description="Run", button_style="primary")
        self.status = w.HTML()
        self.output = w.Output()
        self.controls = [self.workload, self.host_mib, self.overcommit, self.policy, self.param,
                         self.duration]
        self.widget = w.VBox([*self.controls, w.HBox([self.button, self.status]),
                              self.output])
        self.policy.observe(self._on_policy, names="value")
        self.workload.observe(self._on_workload, names="value")
        for c in self.controls:
            c.observe(lambda change: self.run(), names="value")
        self.button.on_click(lambda b: self.run())
        self.results = self.scenario = self.figure = None
        self._quiet = False
        if run_now:
            self.run()

    def _on_policy(self, change) -> None:
        """The parameter slider means the new policy's knob."""
        self._quiet = True
        try:
            if change["new"] == "static":
                self.param.description, self.param.max, self.param.value = "balloon (%)", 90, 20
            else:
                self.param.description, self.param.max, self.param.value = (
                    "inflate step (MiB)", 128, 16)
            self.param.disabled = change["new"] == "none"
        finally:
            self._quiet = False

    def _on_workload(self, change) -> None:
        """A new scenario starts from its own host memory and overcommit."""
        s = self.base[change["new"]]
        self._quiet = True
        try:
            self.host_mib.value = s.host.memory // MIB
            self.overcommit.value = round(sum(g.memory for g in s.guests) / s.host.memory, 2)
        finally:
            self._quiet = False

    def run(self):
        """Simulate the current settings; update the status line and the figure."""
        if self._quiet:
            return None
        self.scenario, policy = configure(
            self.base[self.workload.value], self.host_mib.value, self.overcommit.value,
            self.policy.value, self.param.value, self.duration.value)
        self.status.value = "running…"
        self.results = simulate(self.scenario, policy, progress=False)
        wall = self.results.manifest["wall_seconds"]
        self.status.value = (f"{len(self.scenario.guests)} guests, "
                             f"{sum(g.memory for g in self.scenario.guests) // MIB} MiB of guest "
                             f"RAM on {self.host_mib.value} MiB; ran in {wall:.1f} s")
        self.figure = plot_comparison({self.policy.value: self.results},
                                      title=f"{self.workload.value}, {self.policy.value}")
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display
            display(self.figure)
        return self.results

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


__all__ = ["Explorer", "configure"]
