# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-nojit bench bench-sweep slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench,traces]'
	touch $(STAMP)

# The main job: automatic vs static ballooning on the bundled default scenario.
demo: $(STAMP)
	$(BIN)/autoballoon compare --out results/ --force

# The whole default suite, then the kernel tests once more as plain Python (NUMBA_DISABLE_JIT=1),
# then the notebooks in SMOKE mode.
test: $(STAMP)
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -m nojit tests
	AUTOBALLOON_SMOKE=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake notebooks/

# Long studies that the default suite skips.
slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/autoballoon bench --json

# A 16-point sweep of the default scenario on 1 and on N local Dask workers: the speed-up.
bench-sweep: $(STAMP)
	$(BIN)/autoballoon bench --sweep

clean:
	rm -rf $(VENV) results build *.egg-info
