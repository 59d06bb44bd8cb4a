"""The curated top-level API."""
import subprocess
import sys


def test_top_level_api_imports_without_compiling_kernels():
    code = ("import sys, autoballoon\n"
            "from autoballoon import (load_scenario, simulate, compare, sweep, summarize, Results,"
            " Policy, register, HostView)\n"
            "assert 'dask' not in sys.modules\n"
            "assert 'numba' not in sys.modules, sorted(m for m in sys.modules if 'numba' in m)\n")
    subprocess.run([sys.executable, "-c", code], check=True)
