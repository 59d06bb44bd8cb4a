import os
import sys

sys.path.insert(0, os.path.dirname(__file__))   # tests share helpers: machines.py, fakes.py


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "nojit: small kernel tests that also run as plain Python "
                   "(NUMBA_DISABLE_JIT=1 pytest -m nojit tests)")
