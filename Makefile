# Yushan developer entry points. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Dependencies come from uv.lock (exact versions and hashes), installed by a pinned uv. `make run`
# installs the runtime set only; `make install`/`make test` add the `dev` extra from the same
# lock. `--inexact` keeps uv itself, which lives in the same virtualenv. After editing the
# dependencies in pyproject.toml, run `.venv/bin/uv lock` and commit uv.lock.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
UV_SYNC := $(UV) sync --locked --inexact --no-python-downloads
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp
export PYTHONDONTWRITEBYTECODE := 1
export UV_LINK_MODE := copy
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint fmt bench clean

# The virtualenv is created without pip (ensurepip alone takes seconds); the interpreter's own
# pip installs uv into it, or, where the interpreter has none, a pip bootstrapped in the venv.
$(UV):
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then \
	    $(PYTHON) -m pip --python $(BIN)/python install -q --disable-pip-version-check \
	        uv==$(UV_VERSION); \
	else \
	    $(BIN)/python -m ensurepip -q && $(BIN)/python -m pip install -q uv==$(UV_VERSION); \
	fi

$(RUN_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV_SYNC)
	touch $@

$(DEV_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV_SYNC) --extra dev
	touch $@ $(RUN_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/yushan serve --embedded

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(DEV_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .import_linter_cache *.egg-info
