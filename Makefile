# `make demo` and `make test` each do all set-up on a fresh machine: a virtualenv, a CPU build of torch
# where there is no NVIDIA GPU (so pip never pulls a multi-GB CUDA wheel), and this package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TRACE ?= traces/demo
PROMPTS ?= datasets/prompts/demo.jsonl
SHIPPED ?= datasets/nano

.PHONY: install browser demo seed-demo trace test bench-size bench-dashboard clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: letting pip choose torch"; \
	else \
		echo "no GPU: installing the CPU build torch==2.13.0"; \
		$(PY) -m pip install --quiet torch==2.13.0; \
	fi
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

trace: install
	$(VENV)/bin/workbench trace --model nano --prompts $(PROMPTS) --out $(TRACE) --deltanet --attention --expert-saliency --mtp

# A new $(TRACE) starts as a copy of the shipped dataset $(SHIPPED) (a trace folder: its runs show with no model run);
# the fresh demo run is appended to it. An existing $(TRACE) is only appended to (nothing in it is replaced).
seed-demo:
	@if [ -e $(TRACE) ]; then :; \
	elif $(PY) -c "import json, sys; from workbench.trace.schema import SCHEMA_VERSION; \
sys.exit(json.load(open('$(SHIPPED)/workbench.json'))['schema_version'] != SCHEMA_VERSION)"; then \
		mkdir -p $(dir $(TRACE)) && cp -R $(SHIPPED) $(TRACE) && chmod -R u+w $(TRACE) \
		&& rm -f $(TRACE)/README.md && echo "$(TRACE): seeded with the shipped runs of $(SHIPPED)"; \
	else echo "$(SHIPPED) was written with an older trace schema: $(TRACE) starts empty (workbench app $(SHIPPED) opens it)"; fi

demo: install seed-demo trace
	$(VENV)/bin/workbench info $(TRACE)
	$(VENV)/bin/workbench app $(TRACE)

# The browser test (tests/app/test_browser.py) drives Debian's chromium with Playwright (the playwright package comes
# with the dev extra; no browser download). Installed here when missing and possible (root + apt); else it skips.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "no /usr/bin/chromium and no root + apt-get: the browser test will skip"; fi

test: install browser
	$(PY) -m pytest -q

bench-dashboard: install
	$(PY) bench/bench_dashboard.py

bench-size: install
	$(PY) bench/bench_trace_size.py

clean:
	rm -rf $(VENV) traces
