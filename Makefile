# Every target installs what it needs: a fresh machine only has Python 3.11, pip and make.
PYTHON ?= python3
UV = $(PYTHON) -m uv
VENV = .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.synced

.PHONY: install test lint demo demo-ui bench validate-examples clean

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(UV) sync --locked --quiet
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The real stack (api-server, scheduler, dag-processor, triggerer) left running: Ctrl-C stops it.
demo-ui: $(STAMP)
	$(BIN)/python scripts/demo_ui.py

bench: $(STAMP)
	$(BIN)/python -m bench

validate-examples: $(STAMP)
	@# Exit 1 is expected: the examples include payloads that must be quarantined.
	$(BIN)/qode-lake validate tests/data/examples/ || test $$? -eq 1

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
