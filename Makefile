# The two commands a new user needs: `make dev` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## make test: create .venv when missing, install reliq with test extras, lint, type-check, run the suite
test: $(STAMP) lint typecheck unit

unit: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check reliq gateway tests examples load_tests
	$(BIN)/ruff format --check reliq gateway tests examples load_tests

typecheck: $(STAMP)
	$(BIN)/mypy reliq gateway

## make dev: embedded Valkey (AOF, fsync always) + example workers
dev: $(STAMP)
	$(BIN)/python -m reliq dev examples.shop:app

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .reliq
