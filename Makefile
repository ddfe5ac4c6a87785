# The two commands: `make run` (the product on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
LIFETIMES := lifetimes==0.11.3
CLM_PORT ?= 8000

.PHONY: run test test-scipy assets lint bench messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools

# lifetimes only carries the CDNOW files; --no-deps keeps its old numerical dependencies out.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[run]"
	$(BIN)/pip install --quiet --no-deps "$(LIFETIMES)"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[run,dev]"
	touch $@

assets: $(VENV)/.installed
	$(BIN)/python -m clm.assets

run: $(VENV)/.installed assets
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py setup_demo
	DEBUG=$${DEBUG:-1} CLM_PORT=$(CLM_PORT) PATH="$(BIN):$$PATH" $(BIN)/python -m clm.devserver -f clm/Procfile -d . start

test: $(VENV)/.installed-dev assets
	DEBUG=$${DEBUG:-1} $(BIN)/pytest $(PYTEST_ARGS)

# The CLV fits (tests/metrics/test_clv.py) on each scipy release pyproject.toml allows: its floor and each minor's
# newest patch. Each runs in a small venv over .venv that holds only its scipy (issue 14: optimizers of different
# releases stop at different places where the data leaves a parameter free).
SCIPY_RELEASES := 1.15.0 1.15.3 1.16.3 1.17.1
SITE_PACKAGES = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
test-scipy: $(VENV)/.installed-dev
	set -e; for release in $(SCIPY_RELEASES); do \
	  overlay=$(VENV)/scipy-$$release; \
	  if [ ! -x $$overlay/bin/python ]; then \
	    $(PYTHON) -m venv $$overlay; \
	    echo "import site; site.addsitedir('$(SITE_PACKAGES)')" > $$($$overlay/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/clm-base.pth; \
	    $$overlay/bin/python -m pip install --quiet --no-deps "scipy==$$release"; \
	  fi; \
	  $$overlay/bin/python -c 'import scipy; print("== scipy", scipy.__version__, "from", scipy.__file__)'; \
	  DEBUG=$${DEBUG:-1} $$overlay/bin/python -m pytest -q -p no:cacheprovider tests/metrics/test_clv.py; \
	done

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=$${DEBUG:-1} $(BIN)/mypy

# Translations: collect the strings into locale/de/LC_MESSAGES/django.po, translate the new ones, then compile
# (the compiled .mo is committed, so running CLM needs no gettext tools).
messages: $(VENV)/.installed
	DEBUG=1 $(BIN)/python manage.py makemessages -l de --ignore ".venv/*" --ignore "node_modules/*" --ignore "static/*" --ignore "tests/*" --ignore "bench/*"
	DEBUG=1 $(BIN)/python manage.py compilemessages -l de --ignore ".venv/*"

clean:
	rm -rf $(VENV) static/vendor node_modules staticfiles

# Known vulnerabilities in the installed dependencies (pip-audit; CLM itself, installed editable, is left out).
# --strict: a dependency that could not be checked fails the audit. Accepted exceptions are listed with their
# reason in docs/SECURITY.md and passed as PIP_AUDIT_IGNORE="--ignore-vuln ID ..." (none at present).
.PHONY: audit
audit: $(VENV)/.installed-dev
	$(BIN)/pip freeze --exclude-editable > $(VENV)/audit-requirements.txt
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r $(VENV)/audit-requirements.txt $(PIP_AUDIT_IGNORE)

# `make bench` measures CDNOW; `make bench SCALE=10k|100k|1m` generated data (BENCH_ARGS: more options, e.g.
# --regenerate). What each figure means: docs/BENCHMARKING.md.
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/run.py $(if $(SCALE),--scale $(SCALE)) $(BENCH_ARGS)
