# Single entry point. Every target sets up .venv first (idempotent: created
# if missing, the pinned stack installed again only when pyproject.toml or
# constraints.txt change).
#
# Python: constraints.txt is the tested lock for Python $(LOCK_PYTHON). Unless
# PYTHON is given, the first that runs of python$(LOCK_PYTHON) on the PATH,
# pyenv's $(LOCK_PYTHON).x, then any other Python >= 3.11 (python3.13, python3,
# python3.11) is used. The lock installs on $(LOCK_PYTHON) only; another
# supported Python gets pyproject.toml's lower bounds, unlocked (and says so).
LOCK_PYTHON := 3.12
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHON_CANDIDATES := python$(LOCK_PYTHON) \
  $(wildcard $(PYENV_ROOT)/versions/$(LOCK_PYTHON).*/bin/python$(LOCK_PYTHON)) \
  python3.13 $(wildcard $(PYENV_ROOT)/versions/3.13.*/bin/python3.13) python3 python3.11
SUPPORTED := import sys; print(sys.executable if sys.version_info >= (3, 11) else "")
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach c,$(PYTHON_CANDIDATES),$(shell $(c) -c '$(SUPPORTED)' 2>/dev/null)))
endif
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DISTRIBUTED := $(VENV)/.installed-distributed
CHROMIUM := $(VENV)/.chromium-tried
# Says which Python was found, and fails on one older than 3.11.
CHECK_PYTHON := import sys; v = "%d.%d" % sys.version_info[:2]; \
  print(f"Python {v}: $(PYTHON)" + ("" if v == "$(LOCK_PYTHON)" else "; constraints.txt locks \
  $(LOCK_PYTHON): installing the lower bounds of pyproject.toml, untested")) \
  if sys.version_info >= (3, 11) else sys.exit(f"Python {v} ($(PYTHON)): 3.11 or later is required")
# The lock on the Python it was made with, else nothing (the lower bounds).
LOCK := $(shell $(PYTHON) -c 'import sys; print("-c constraints.txt" if "%d.%d" % sys.version_info[:2] == "$(LOCK_PYTHON)" else "")' 2>/dev/null)
CUDA ?= 13

.PHONY: setup bench test docs speed lint cuda gpu-check chromium

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found (tried: $(PYTHON_CANDIDATES)); set PYTHON=/path/to/python3.12" >&2; exit 2; }
	@$(PYTHON) -c '$(CHECK_PYTHON)'
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" != "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" ]; then \
	  echo "$(VENV) has another Python than $(PYTHON): making it anew"; rm -rf $(VENV); fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(LOCK) -e '.[dev,docs]'
	$(PY) -m pip install -q $(LOCK) --no-deps learned-optimization==0.0.1
	touch $(STAMP)

# The optional Ray extra: the tests run the Ray executor against a local instance.
$(DISTRIBUTED): $(STAMP)
	$(PY) -m pip install -q $(LOCK) -e '.[dev,docs,distributed]'
	touch $(DISTRIBUTED)

# Chromium for the report's screenshot test (tests/eval/test_report_formats.py),
# best effort and tried once (rm $(CHROMIUM) to try again): installed with apt-get
# when it is missing and we are root; otherwise that test is skipped, and the
# build goes on either way.
chromium: $(CHROMIUM)

$(CHROMIUM): $(STAMP)
	@if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1 \
	  && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium with apt-get (for the report screenshot test)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    || { DEBIAN_FRONTEND=noninteractive apt-get update -q \
	      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || true; \
	fi; \
	[ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 \
	  || echo "chromium could not be installed (needs root, apt-get, a network); the report screenshot test will be skipped"
	touch $(CHROMIUM)

bench: $(STAMP)  ## the main job: rllc bench (quick protocol on digits-mlp, into runs/quick), then its report
	$(VENV)/bin/rllc bench
	$(VENV)/bin/rllc report runs/quick

test: $(DISTRIBUTED) $(CHROMIUM) docs  ## the docs build, then the test suite, one process per core, each test file in one of them
	$(PY) -m pytest -n auto --dist loadfile

# The optimizer table is generated from the catalog at build time (docs/_ext). -E reads
# every page on every build: an incremental build would not repeat the warning of a page
# it did not read again, and a second make docs would pass.
docs: $(STAMP)  ## the docs site into docs/_build/html; a warning (a broken link, a missing page) fails it
	$(PY) -m sphinx -E -W --keep-going -q -b html docs docs/_build/html

speed: $(STAMP)  ## update, engine and command start-up speed, as ratios measured in one run
	$(PY) -m eval.experiments.bench_update --out reports/bench_update.txt
	$(PY) -m eval.experiments.bench_engine --out reports/bench_engine.txt
	$(PY) -m eval.experiments.bench_startup --out reports/bench_startup.txt

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

cuda: $(STAMP)  ## on a GPU machine: the CUDA 13 build of the installed jax (make cuda CUDA=12 for CUDA 12)
	$(PY) -m pip install $(LOCK) "jax[cuda$(CUDA)]==$$($(PY) -c 'import jax; print(jax.__version__)')"

gpu-check: $(STAMP)  ## what the suite does on this machine's device (GPU or CPU), into reports/gpu (<= 10 min)
	$(PY) -m eval.experiments.gpu_check --out reports/gpu
