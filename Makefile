# vhostd — install / run / test / lint / bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit bench bench-quick clean system

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/vhostd serve $(if $(wildcard vhostd.toml),--config vhostd.toml,--config examples/demo/vhostd.toml)

system:
	bash scripts/ensure-system.sh

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/mypy

test: system install lint
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q -m "not docker and not slow"

bench: system install
	$(BIN)/python -m bench.run

bench-quick: system install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
