# `make demo` and `make test` each do all set-up on a fresh machine: a virtualenv, a CPU build of torch
# where there is no NVIDIA GPU (so pip never pulls a multi-GB CUDA wheel), and this package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TRACE ?= traces/demo
PROMPTS ?= datasets/prompts/demo.jsonl

.PHONY: install demo trace test bench-size clean

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
	$(VENV)/bin/workbench trace --model nano --prompts $(PROMPTS) --out $(TRACE) --deltanet --attention

demo: trace
	$(VENV)/bin/workbench info $(TRACE)
	$(VENV)/bin/workbench app $(TRACE)

test: install
	$(PY) -m pytest -q

bench-size: install
	$(PY) bench/bench_trace_size.py

clean:
	rm -rf $(VENV) traces
