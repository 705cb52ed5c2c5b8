# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs docs-serve config-reference bench bench-tiny scheduler clean-data image image-test

$(STAMP): setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/overnight example-data
	PATH=$(CURDIR)/$(BIN):$$PATH luigi --module tasks RegisterModel
	$(BIN)/overnight summary

test: $(STAMP)
	$(BIN)/python -m pytest

# What CI checks besides the tests: the tree formatted and linted, the import contracts and the
# types (pyproject.toml says which rules and which modules mypy does not check yet).
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

# The documentation site (mkdocs.yml, pages in docs/): built strictly into site/, as CI does (a
# broken link, a missing page or anchor fails); docs-serve rebuilds on every save. The theme's
# notice about its successor is silenced: it is advice, not a warning about these pages.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# docs/configuration.md from the task parameters and luigi.cfg (a test fails while they disagree).
config-reference: $(STAMP)
	$(BIN)/python -m tasks.settings_reference

# The container image (Dockerfile), with docker where its daemon answers, else podman; VARIANT=gpu
# for TensorFlow with CUDA. image-test builds it from nothing and runs the example job on SQLite
# and PostgreSQL and the server inside it (scripts/container/image_test.sh).
image:
	VARIANT=$(or $(VARIANT),cpu) scripts/container/build_image.sh

image-test:
	scripts/container/image_test.sh

# Ratios against baselines measured in the same run (docs/performance.md); minutes, not seconds.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

bench-tiny: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --tiny

# The central Luigi scheduler with state persistence and its web page (scripts/scheduler.sh).
scheduler: $(STAMP)
	scripts/scheduler.sh

clean-data:
	rm -rf data/0[0-9]_* data/overnight.db
