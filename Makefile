# Every target builds its own virtual environment on first use: a fresh machine
# needs nothing but python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test unit integration lint bench dist clean

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

$(VENV)/.installed-dist: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dist]'
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

# Wheel and sdist into dist/, then checked as a user would meet them: twine's
# metadata check, the archives' contents (scripts/check_dist.py), the wheel
# installed into a fresh venv with pytest running scripts/smoke_installed.py,
# and the sdist's own test suite run against that installed wheel. The fresh
# venv uses $(PYTHON): `make dist PYTHON=python3.13` checks under another Python.
# (A stale egg-info would feed its old file list into the new sdist.)
dist: $(VENV)/.installed-dist
	rm -rf build dist langchain_dfehub.egg-info
	$(PY) -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(PY) scripts/check_dist.py dist
	@set -e; scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	wheel=$$(ls dist/*.whl); venv="$$scratch/venv"; \
	echo "== fresh venv: $$wheel and pytest"; \
	$(PYTHON) -m venv "$$venv"; \
	"$$venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$venv/bin/python" -m pip install --quiet "$$wheel" pytest; \
	"$$venv/bin/python" scripts/smoke_installed.py --require-installed; \
	echo "== the sdist's tests, against the installed wheel with its [test] extra"; \
	"$$venv/bin/python" -m pip install --quiet "$$wheel[test]"; \
	tar -xzf dist/*.tar.gz -C "$$scratch"; \
	cd "$$scratch"/langchain_dfehub-*/ && "$$venv/bin/pytest" -q -p no:cacheprovider
	@echo "== dist/ is built and checked: $$(cd dist && echo *)"

lint: $(VENV)/.installed-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist langchain_dfehub.egg-info
