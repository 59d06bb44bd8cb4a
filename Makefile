# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-nojit bench slow fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench,traces]'
	touch $(STAMP)

# The main job: automatic vs static ballooning on the bundled default scenario.
demo: $(STAMP)
	$(BIN)/autoballoon compare --out results/

# The whole default suite, then the kernel tests once more as plain Python (NUMBA_DISABLE_JIT=1),
# then the notebooks in SMOKE mode.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -m nojit tests
	AUTOBALLOON_SMOKE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake notebooks/

# The fuzz tests of `make test` (tests/test_fuzz.py, 200 examples) at 5,000 examples, with a
# fresh random seed each time; a failure prints the example and a seed to reproduce it, and
# belongs in tests/test_reliability.py as a regression test once fixed.
fuzz: $(STAMP)
	AUTOBALLOON_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_fuzz.py

# Long studies that the default suite skips.
slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/autoballoon bench --json

clean:
	rm -rf $(VENV) results build *.egg-info
