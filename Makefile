# One entry point. `make run` runs the whole system; `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test exercise test-hosts check lint lint-imports format types migrations-check install bench bench-compare bench-cliff soak screenshots clean

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> creating the virtualenv and installing requirements (first run takes a minute)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@$(BIN)/python scripts/run.py

test: $(STAMP)
	@$(BIN)/python scripts/ensure_browser.py
	@$(BIN)/python scripts/ensure_js.py
	@$(BIN)/python scripts/test.py $(ARGS)

# `make exercise N`: your code of exercise N (exercises/NN_name/starter.py) against its checks (docs/exercises.md)
exercise: $(STAMP)
	@$(BIN)/python scripts/exercise.py $(or $(N),$(word 2,$(MAKECMDGOALS)),none)
ifeq (exercise,$(firstword $(MAKECMDGOALS)))
ifneq (,$(word 2,$(MAKECMDGOALS)))
$(word 2,$(MAKECMDGOALS)):
	@:
endif
endif

# the multi-host suite alone (network namespaces; needs root, skips without): also part of `make test`
test-hosts: $(STAMP)
	@$(BIN)/python scripts/ensure_netfilter.py
	@$(BIN)/python scripts/test.py tests/hosts -s $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# the type checker and the migrations check load the settings; neither needs a secret key
types: $(STAMP)
	DEBUG=1 $(BIN)/mypy objects

# the import contracts of pyproject.toml: the demo apps use the framework's public API only
lint-imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

migrations-check: $(STAMP)
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

check: lint lint-imports types migrations-check test

bench: $(STAMP)
	@$(BIN)/python bench/run.py

bench-compare: $(STAMP)
	@$(BIN)/python bench/run.py --compare --rounds 5

bench-cliff: $(STAMP)
	@$(BIN)/python bench/cliff.py

soak: $(STAMP)
	@$(BIN)/python bench/soak.py

screenshots: $(STAMP)
	@$(BIN)/python scripts/ensure_browser.py
	@OBJECTS_DOCS_SCREENSHOTS=1 $(BIN)/python scripts/test.py tests/browser/test_docs_screenshots.py \
		"tests/browser/test_shop.py::test_shopper_adds_changes_removes_and_checks_out"

clean:
	rm -rf $(VENV) var
