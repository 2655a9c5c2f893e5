# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed only when torch is not importable in the venv; override for your own build,
# e.g. `make demo TORCH_SPEC="torch torchvision --index-url ..."`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo

.PHONY: demo test install lint typecheck clean

# The demo needs the package; the checks also need its dev extras (pytest, ruff, mypy).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(VENV)/bin/clinfonce demo --out $(DEMO_OUT)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install
	$(VENV)/bin/mypy src/clinfonce

test: lint typecheck
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
