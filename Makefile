# Two entry points for a fresh machine: `make demo` (the quickstart) and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test install lint typecheck bench clean system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: an unpinned resolve on a CPU-only machine would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/tt quickstart

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

# The report's browser test needs headless Chromium (Debian's package). Installed when missing and
# apt-get is usable; otherwise the test fails with the install command (TT_SKIP_BROWSER=1 skips it).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the report's browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; run: sudo apt-get install -y chromium"; \
	  else echo "note: chromium missing; run: sudo apt-get install -y chromium"; fi; }

test: $(STAMP) system-deps lint typecheck
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/tt bench data
	$(BIN)/tt bench train
	$(BIN)/tt bench plan --json

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
