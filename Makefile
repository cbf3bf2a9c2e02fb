# The two commands of the README: `make demo` (the main job) and `make test`.
# Each creates the virtual environment in .venv if it is missing and installs
# everything through constraints.txt (which pins the CPU build of torch).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS_STAMP := $(VENV)/.deps-installed
SELF_STAMP := $(VENV)/.self-installed
SOURCES := $(shell find core campaign robots devices plans analysis agents sim -name '*.py' -o -name '*.yaml' 2>/dev/null)
export SAS_DLL_PATH := $(CURDIR)/$(VENV)/sasmodels-kernels

.PHONY: demo test e2e lint typecheck layers unit reference venv clean

demo: $(SELF_STAMP)
	$(BIN)/tandem campaign demo

test: lint typecheck layers unit

lint: $(SELF_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(SELF_STAMP)
	$(BIN)/mypy

layers: $(SELF_STAMP)
	# no cache: a cached import graph (the link tree is symlinks) once missed imports that had changed
	$(BIN)/lint-imports --no-cache

unit: $(SELF_STAMP)
	$(BIN)/pytest

# The multi-process queue-server test alone (Redis, two RE Managers, Tiled, the analysis worker,
# the agent daemon killed and restarted); `make unit` runs it too.
e2e: $(SELF_STAMP)
	$(BIN)/pytest tests/test_queue_end_to_end.py

# docs/reference/ from the code (the CLI, the campaign and deck file schemas); `make unit` fails
# when a page is stale (tests/test_reference_docs.py)
reference: $(SELF_STAMP)
	$(BIN)/python scripts/reference.py

venv: $(SELF_STAMP)

$(DEPS_STAMP): pyproject.toml constraints.txt scripts/bootstrap
	bash scripts/bootstrap "$(PYTHON)" "$(VENV)"
	touch $@

# The editable install is a link tree (strict mode) shaped like the installed package: mypy and
# import-linter see `tandem.robots` where the checkout has `robots/`. Re-linking is cheap and picks
# up new modules; the checkout's root has no `tandem/` folder, so it imports the link tree too.
$(SELF_STAMP): $(DEPS_STAMP) $(SOURCES)
	@# setuptools' deprecation notices go to a log, shown only if the install fails
	@$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -c constraints.txt \
		--config-settings editable_mode=strict -e . > $(VENV)/self-install.log 2>&1 \
		|| { cat $(VENV)/self-install.log; exit 1; }
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
