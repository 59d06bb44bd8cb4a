"""The perf map names JIT code: numba's mangled names become dotted Python names."""
import numba

from autoballoon import perfmap


def test_demangle_numba_symbols():
    sym = ("_ZN11autoballoon7machine2mm6vmscan20shrink_inactive_listB3v26B38c8tJTIeFIjxB2IKSgI4Crv"
           "QClUZKEGARTQA_3dE1573MachineState")
    assert perfmap.demangle(sym) == "autoballoon.machine.mm.vmscan.shrink_inactive_list"
    assert perfmap.demangle("memset") == "memset"


def test_map_lists_a_function_compiled_in_this_process(tmp_path):
    @numba.njit
    def twice(x):
        return 2 * x

    assert twice(21) == 42
    path, n = perfmap.write(str(tmp_path / "perf.map"), [twice])
    lines = [line.split(maxsplit=2) for line in open(path)]
    assert n == len(lines) > 0
    named = [(int(a, 16), int(size, 16)) for a, size, name in lines
             if name.strip().endswith("twice")]
    assert named and all(a > 0 and size > 0 for a, size in named)
