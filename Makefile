# Every target builds its own virtual environment on first use: a fresh machine
# needs nothing but python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test unit integration lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per extra, rebuilt when pyproject.toml changes.
$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-lint: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,lint]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

demo: $(VENV)/.installed-base
	$(PY) -m langchain_dfehub.demo

# pytest exits 5 when it collected nothing; say so instead of failing quietly.
define run_pytest
	@$(PY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests in $(1)" >&2; fi; \
	exit $$rc
endef

test: unit integration

unit: $(VENV)/.installed-test
	$(call run_pytest,tests)

# Against the bundled emulator, or against DFEHUB_BASE_URL when it is set.
integration: $(VENV)/.installed-test
	$(call run_pytest,integration_tests)

# ChatDfeHub vs ChatOpenAI against the emulator; prints a table, writes nothing.
bench: $(VENV)/.installed-bench
	$(PY) -m benchmarks.run

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
