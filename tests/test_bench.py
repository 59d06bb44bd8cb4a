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

