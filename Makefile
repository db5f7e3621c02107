# Single entry point. Every target sets up .venv first (idempotent: created
# if missing, the pinned stack installed again only when pyproject.toml or
# constraints.txt change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DISTRIBUTED := $(VENV)/.installed-distributed

.PHONY: setup bench test speed lint cuda

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (constraints.txt pins wheels for it); set PYTHON=python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m pip install -q -c constraints.txt --no-deps learned-optimization==0.0.1
	touch $(STAMP)

# The optional Ray extra: the tests run the Ray executor against a local instance.
$(DISTRIBUTED): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,distributed]'
	touch $(DISTRIBUTED)

bench: $(STAMP)  ## the main job: rllc bench (quick protocol on digits-mlp, into runs/quick)
	$(VENV)/bin/rllc bench

test: $(DISTRIBUTED)  ## the test suite, one process per core, each test file in one of them
	$(PY) -m pytest -n auto --dist loadfile

speed: $(STAMP)  ## update and engine speed, as ratios measured in one process
	$(PY) -m eval.bench_update --out reports/bench_update.txt
	$(PY) -m eval.bench_engine --out reports/bench_engine.txt

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

cuda: $(STAMP)  ## on a GPU machine: the CUDA 12 build of the pinned jax
	$(PY) -m pip install -c constraints.txt "jax[cuda12]==0.10.2"
