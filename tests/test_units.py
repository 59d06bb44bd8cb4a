import pytest

from autoballoon.scenario.spec import SpecError
from autoballoon.units import format_size, parse_duration, parse_rate, parse_size

MIB, GIB = 2**20, 2**30


@pytest.mark.parametrize("text, expected", [
    ("4GiB", 4 * GIB), ("768MiB", 768 * MIB), ("16MiB", 16 * MIB), ("4096", 4096),
    (4096, 4096), ("4G", 4 * GIB), ("4GB", 4 * GIB), ("4gb", 4 * GIB), ("1.5GiB", 3 * GIB // 2),
    ("512 KiB", 512 * 1024), ("64k", 65536), ("10B", 10), ("0", 0), ("1_024", 1024),
    ("1TiB", 2**40),
])
def test_sizes_are_binary(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "GiB", "4 parsecs", "-1GiB", "1.5", "0.1KiB", True, 1.5,
                                 None, [4]])
def test_bad_sizes_name_the_key(bad):
    with pytest.raises(SpecError, match=r"^guest\[0\]\.memory: expected"):
        parse_size(bad, "guest[0].memory")


def test_negative_int_size():
    with pytest.raises(SpecError, match="size >= 0"):
        parse_size(-4096, "host.memory")


@pytest.mark.parametrize("text, ns", [
    ("70s", 70 * 10**9), ("100ms", 10**8), ("1us", 1000), ("1µs", 1000), ("2.5min", 150 * 10**9),
    ("200ns", 200), ("1h", 3600 * 10**9), ("0", 0), (0, 0), ("1.5ms", 1_500_000),
])
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["70", 70, 1.5, "1.5ns", "70 sec", "-1s", "s", True])
def test_bad_durations(bad):
    with pytest.raises(SpecError, match=r"^run\.duration: expected"):
        parse_duration(bad, "run.duration")


def test_rates():
    assert parse_rate("500MiB/s") == 500 * MIB
    assert parse_rate(1000) == 1000
    with pytest.raises(SpecError, match="host.swap.bandwidth"):
        parse_rate("500MiB/min", "host.swap.bandwidth")


def test_format_size_round_trips():
    for n in (768 * MIB, 4 * GIB, 4096, 4097, 1536 * 1024):
        assert parse_size(format_size(n)) == n
    assert format_size(768 * MIB) == "768MiB"
