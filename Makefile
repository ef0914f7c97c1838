# Two entry points for a fresh machine: `make demo` (the quickstart) and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# e.g. https://download.pytorch.org/whl/cpu: PyTorch's CPU wheels (PyPI's Linux torch is the CUDA build)
TORCH_INDEX ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test install lint typecheck imports bench clean system-deps baselines

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: an unpinned resolve on a CPU-only machine would pull a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
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

# The layer rules (pyproject.toml [tool.importlinter], docs/architecture.md): an import back up fails.
imports: $(STAMP)
	$(BIN)/lint-imports

test: $(STAMP) system-deps lint typecheck imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/tt bench data
	$(BIN)/tt bench train
	$(BIN)/tt bench plan --json

# The d3rlpy baselines of `tt bench quality` (bc, td3bc, cql, iql, dt) live in their own venv:
# d3rlpy 2.8.1 pins gymnasium==1.0.0 and pulls the old `gym`, which must not touch $(VENV).
# Order: torch (pinned, CPU wheel), d3rlpy, our package with its dependencies, then gymnasium back
# to the main venv's version (our episode loop needs gymnasium>=1.1; pip warns about d3rlpy's pin,
# and the last step checks that every baseline still builds, fits a few steps and acts).
BASELINES_VENV ?= .venv-baselines
D3RLPY_SPEC ?= d3rlpy==2.8.1
MAIN_PYTHON ?= $(BIN)/python
BASELINES_STAMP := $(BASELINES_VENV)/.installed-baselines

$(BASELINES_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BASELINES_VENV)
	$(BASELINES_VENV)/bin/python -m pip install -q --upgrade pip
	$(BASELINES_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(BASELINES_VENV)/bin/python -m pip install -q "$(D3RLPY_SPEC)"
	$(BASELINES_VENV)/bin/python -m pip install -q -e .
	gym_spec=$$($(MAIN_PYTHON) -c 'import gymnasium; print("gymnasium[mujoco,classic-control]==" + gymnasium.__version__)' 2>/dev/null || echo 'gymnasium[mujoco,classic-control]>=1.1,<2'); \
	  echo "restoring $$gym_spec in $(BASELINES_VENV) (pip may warn that d3rlpy pins gymnasium==1.0.0)"; \
	  $(BASELINES_VENV)/bin/python -m pip install -q --upgrade "$$gym_spec"
	$(BASELINES_VENV)/bin/python -m trajectory_transformer.lab.baselines_worker --check
	touch $(BASELINES_STAMP)

baselines: $(BASELINES_STAMP)

clean:
	rm -rf $(VENV) $(BASELINES_VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
