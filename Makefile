# octanogan: `make demo` installs and runs the demo pipeline; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_OUT ?= demo_output

.PHONY: install demo test test-all browser bench lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of PyTorch; on a CUDA machine install the matching torch build first.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,vendor,monitor]'
	touch $@

demo: install
	$(VENV)/bin/octanogan run pipelines/demo.yaml --out $(DEMO_OUT)

# Browser tests need Debian's chromium; install it when running as root (CI), else they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: browser tests will be skipped"; }

test: install browser
	$(PY) -m pytest

test-all: install browser
	$(PY) -m pytest -m ""

bench: install
	$(PY) tests/benchmarks/bench_training.py
	$(PY) tests/benchmarks/bench_scoring.py

lint: install
	$(VENV)/bin/ruff check octanogan tests scripts
