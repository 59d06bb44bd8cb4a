"""Policies for the sweep tests, importable by Dask worker processes (tests/ is on their path):
one that holds its run at t = 0 until the test has killed a process, and one that fails."""
from __future__ import annotations

import os
import time
from pathlib import Path

from autoballoon.control.policies import Policy


class HoldOnce(Policy):
    """Automatic (does nothing else): at t = 0 of a run with seed ``seed`` (any seed if 0), writes
    ``gate/pid-<pid>`` and waits until ``gate/released`` exists, so that the test can kill this
    process in the middle of a run. Once released it never waits again."""

    def __init__(self, scenario, gate="", seed=0):
        super().__init__(scenario)
        self.gate, self.seed = Path(gate), seed

    def observe(self, view):
        hold = self.seed in (0, self.scenario.run.seed)
        if view.now_ns == 0 and hold and not (self.gate / "released").exists():
            (self.gate / f"pid-{os.getpid()}").write_text("")
            deadline = time.monotonic() + 120          # never hang a test run for ever
            while not (self.gate / "released").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return None


class FailOnSeed(Policy):
    """Raises at t = 0 of a run with seed ``seed``."""

    def __init__(self, scenario, seed=2):
        super().__init__(scenario)
        self.seed = seed

    def observe(self, view):
        if self.scenario.run.seed == self.seed:
            raise RuntimeError(f"deliberate failure at seed {self.seed}")
        return None
