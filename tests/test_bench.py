"""The benchmark's bare LRU (its speed ceiling for scale) counts misses as an LRU must."""
from collections import OrderedDict

import pytest

from autoballoon.bench import bare_lru, zipf_pages


def lru_misses(trace, frames):
    cache = OrderedDict()
    misses = 0
    for page in trace:
        if page in cache:
            cache.move_to_end(page)
            continue
        misses += 1
        if len(cache) == frames:
            cache.popitem(last=False)
        cache[page] = True
    return misses


@pytest.mark.parametrize("frames", [1, 2, 7, 50])
@pytest.mark.parametrize("seed", [1, 2])
def test_bare_lru_matches_an_ordered_dict_lru(frames, seed):
    trace = zipf_pages(3000, 100, 0.9, seed)
    assert bare_lru(trace, 100, frames) == lru_misses(trace.tolist(), frames)



def test_scale_bench_reports_one_run_of_the_scenario(capsys):
    """`bench --scale SCENARIO` on a small scenario: one run, its figures consistent (the
    speed figures themselves are measured, never asserted)."""
    import json

    from autoballoon.bench import main
    assert main(["--scale", "traces-mix", "--set", "run.duration=2s", "--policy", "none"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == "traces-mix" and out["policy"] == "none" and out["guests"] == 5
    assert out["simulated_s"] == 2.0 and out["events"] > 0 and out["peak_rss_mib"] > 0
    assert out["builds_finished"] == 0          # nothing ends in 2 s: all loop or run longer
    assert out["build_s_mean"] is None          # (strict JSON: no NaN)
    assert {"wall_s", "cpu_s", "sim_s_per_wall_s", "events_per_s", "boot_s"} <= set(out)
