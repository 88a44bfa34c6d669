# The two commands a newcomer needs: `make run` (set up and start the service) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= cpu,dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: run install test test-fast bench lint clean

run: $(STAMP)  ## create the environment, migrate, start web + worker(s) + Flower
	$(BIN)/dogbreed up

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

test: $(STAMP)  ## the whole suite: real Redis, Celery worker, SQLite + PostgreSQL, Flask, OpenCV
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)  ## the benchmarks in bench/, each printing ratios against a same-run baseline
	$(BIN)/python bench/cli_start.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/train_cache.py
	$(BIN)/python bench/e2e_vs_raw.py --backbone efficientnet_lite2 --weights imagenet --batch 16 --jobs 160

lint: $(STAMP)  ## ruff, then mypy over shared/ web/ worker/ ml/ (both installed by the dev extra; config in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
