# `make demo` and `make test` each do all set-up on a fresh machine: a virtualenv, a CPU build of torch
# where there is no NVIDIA GPU (so pip never pulls a multi-GB CUDA wheel), and this package with every other
# dependency at the exact version of the committed lock (requirements/lock.txt; `make lock` regenerates it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK ?= requirements/lock.txt
# torch and triton are the Makefile's choice, never the lock's: this CPU build where there is no NVIDIA GPU (triton
# for the Triton kernels' tests under its CPU interpreter), else whatever CUDA build pip picks with its own triton.
CPU_TORCH := torch==2.13.0 triton==3.9.0
# The transformers releases `make test-compat` runs the adapter and capture suites on: the oldest the project declares
# and the newest (tests/adapters/test_upstream.py checks they bound pyproject.toml's range).
COMPAT_RELEASES ?= 5.17.0 5.25.0
COMPAT_DIR ?= $(or $(TMPDIR),/tmp)/workbench-compat
# What touches transformers' internals: the adapters, every capture kind, the ops compared with transformers' own
# kernels, the MTP head, generation (generate() and the cache's names), patching (kernel globals, the cache) and `workbench doctor`.
COMPAT_TESTS ?= tests/adapters tests/capture tests/ops tests/mtp tests/generation tests/interventions tests/test_doctor.py
TRACE ?= traces/demo
PROMPTS ?= datasets/prompts/demo.jsonl
SHIPPED ?= datasets/nano

.PHONY: install browser demo seed-demo trace test test-compat docs lock bench-size bench-dashboard clean

# $(call install_torch,VENV): the CPU build where there is no NVIDIA GPU; with a GPU, pip's choice (comes with the package)
define install_torch
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: letting pip choose torch"; \
	else \
		echo "no GPU: installing the CPU build $(CPU_TORCH)"; \
		$(1)/bin/python -m pip install --quiet $(CPU_TORCH); \
	fi
endef

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(call install_torch,$(VENV))
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $@

# Regenerate the lock: a fresh venv takes the newest release of every dependency that pyproject.toml admits, and
# the versions it got are written down (torch, triton and CUDA packages left out: the Makefile chooses those).
# Run it on the CPU box, then `make test` and `make test-compat` before committing the new lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet $(CPU_TORCH)
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	mkdir -p $(dir $(LOCK))
	{ echo "# Exact versions \`make install\` installs (pip -c). Regenerate with \`make lock\`; torch and triton are the Makefile's."; \
	  echo "# Written $$(date -u +%F) by make lock on Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())')."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -viE '^(torch|triton|nvidia-[a-z0-9-]*|cuda-[a-z0-9-]*)=='; } > $(LOCK)
	rm -rf .lock-venv
	@echo "wrote $(LOCK): $$(grep -vc '^#' $(LOCK)) pinned packages"

# $(COMPAT_TESTS) on each of $(COMPAT_RELEASES), each in a throwaway venv: the lock's versions for
# everything but transformers and what it pins itself (huggingface-hub, hf-xet, kernels differ between releases).
test-compat:
	@set -e; for release in $(COMPAT_RELEASES); do \
		env=$(COMPAT_DIR)/transformers-$$release; rm -rf $$env; $(PYTHON) -m venv $$env; \
		echo "== transformers $$release in $$env"; \
		$(MAKE) --no-print-directory compat-torch COMPAT_ENV=$$env; \
		grep -viE '^(transformers|huggingface[-_]hub|hf[-_]xet|kernels)==' $(LOCK) > $$env/constraints.txt; \
		$$env/bin/python -m pip install --quiet -c $$env/constraints.txt -e . pytest "transformers==$$release"; \
		$$env/bin/python -m pytest -q -p no:cacheprovider $(COMPAT_TESTS); \
		rm -rf $$env; \
	done

compat-torch:
	$(call install_torch,$(COMPAT_ENV))

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

# The documentation site (mkdocs.yml, docs/) into build/site. --strict: any warning (a broken link or anchor, a page
# out of the nav, a docstring mkdocstrings cannot render) fails the build. The schema, CLI, families and capture-kind
# pages are generated from the code's registries by docs/hooks/generated_pages.py; tests/docs runs the pages' code.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench-dashboard: install
	$(PY) bench/bench_dashboard.py

bench-size: install
	$(PY) bench/bench_trace_size.py

clean:
	rm -rf $(VENV) traces .lock-venv $(COMPAT_DIR) build/site
