# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-nojit bench bench-sweep slow fuzz clean validate figures lab

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench,traces]'
	touch $(STAMP)

# The main job: automatic vs static ballooning on the bundled default scenario.
demo: $(STAMP)
	$(BIN)/autoballoon compare --out results/ --force

# The whole default suite (it executes the notebooks in SMOKE mode with papermill, and opens
# one in JupyterLab in headless Chromium), then the kernel tests once more as plain Python
# (NUMBA_DISABLE_JIT=1).
test: $(STAMP)
	$(BIN)/python -m pytest -q
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -m nojit tests

# Every notebook in full mode (papermill) into results/notebooks/; the paper figures go to
# results/figures/NAME.{pdf,png} and the tables to results/tables/NAME.csv, each beside
# NAME.manifests.json (the manifests of the runs it came from).
figures: $(STAMP)
	mkdir -p results/notebooks
	for nb in notebooks/*.ipynb; do \
	  $(BIN)/papermill --cwd notebooks -p EXPORT "$(CURDIR)/results" "$$nb" \
	    "results/notebooks/$$(basename "$$nb")" || exit 1; \
	done

# JupyterLab on the notebooks, as a user starts it (--allow-root: containers often run as root).
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --allow-root

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

# A 16-point sweep of the default scenario on 1 and on N local Dask workers: the speed-up.
bench-sweep: $(STAMP)
	$(BIN)/autoballoon bench --sweep

# Real-guest validation (not part of `test`): installs qemu-system-x86, linux-image-amd64 and
# busybox-static with apt-get if missing, builds the guest image in validation/build/, runs every
# validation/scenarios/*.toml in QEMU (KVM if it works, else TCG) and writes validation/results/.
# See validation/README.md. VALIDATE_ARGS="--only NAME --accel tcg" narrows it.
validate: $(STAMP)
	$(BIN)/python -m validation.run --calibrate $(VALIDATE_ARGS)

clean:
	rm -rf $(VENV) results build *.egg-info
