# Single entry point. Every target sets up .venv first (idempotent: created
# if missing, the pinned stack installed again only when pyproject.toml or
# constraints.txt change).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DISTRIBUTED := $(VENV)/.installed-distributed
CHROMIUM := $(VENV)/.chromium-tried

.PHONY: setup bench test speed lint cuda chromium

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

test: $(DISTRIBUTED) $(CHROMIUM)  ## the test suite, one process per core, each test file in one of them
	$(PY) -m pytest -n auto --dist loadfile

speed: $(STAMP)  ## update, engine and command start-up speed, as ratios measured in one run
	$(PY) -m eval.experiments.bench_update --out reports/bench_update.txt
	$(PY) -m eval.experiments.bench_engine --out reports/bench_engine.txt
	$(PY) -m eval.experiments.bench_startup --out reports/bench_startup.txt

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

cuda: $(STAMP)  ## on a GPU machine: the CUDA 12 build of the pinned jax
	$(PY) -m pip install -c constraints.txt "jax[cuda12]==0.10.2"
