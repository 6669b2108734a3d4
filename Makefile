# `make run` and `make test` each set up .venv on first use (python3 -m venv + pip).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: run test lint bench prompts clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)  ## start the server (stdio by default; ARGS="--transport http" for HTTP)
	$(BIN)/easel-mcp $(ARGS)

test: lint  ## the static checks, then the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (pyflakes, imports, bugbear) and mypy; `make test` runs these first
	$(BIN)/ruff check server providers bench tests
	$(BIN)/mypy server providers

bench: $(STAMP)  ## measure start-up, overhead, concurrency, memory and storage at scale
	$(BIN)/python bench/run.py $(ARGS)

prompts: $(STAMP)  ## print the evaluation texts' first lines beside their illustrate_content prompts
	$(BIN)/python bench/prompts.py

clean:
	rm -rf $(VENV) .venv-interop build *.egg-info
