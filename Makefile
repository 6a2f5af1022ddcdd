# vhostd — install / run / test / lint / bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install native run test lint unit bench bench-quick clean system

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The per-request modules compiled with mypyc (scripts/build_native.py; a no-op when current).
native: install
	$(BIN)/python scripts/build_native.py

run: install
	$(BIN)/python scripts/build_native.py || echo "make run: no compiled modules (see above); running interpreted"
	$(BIN)/vhostd serve $(if $(wildcard vhostd.toml),--config vhostd.toml,--config examples/demo/vhostd.toml)

system:
	PYTHON=$(PYTHON) bash scripts/ensure-system.sh

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: system install lint native
	$(BIN)/pytest -q

unit: install native
	$(BIN)/pytest -q -m "not docker and not slow"

bench: system install native
	$(BIN)/python -m bench.run

bench-quick: system install native
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
