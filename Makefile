# warmrtc developer commands. `make test` is what CI runs (through .ci/run). Every target that
# needs Python first makes (or reuses) the project's own environment in .cache/venv.
VENV ?= .cache/venv
PYTHON := $(VENV)/bin/python
CPP_SOURCES := $(wildcard cpp/*.cpp cpp/*.hpp)
PY_SOURCES := python tests benchmarks scripts/libyuv-source docs/extensions

.PHONY: install lint format test unit docs wheel py314 py314-e2e bench demo stack browser clean

# The project environment and an editable install: scripts/dev-env checks the prerequisites,
# and the native core is rebuilt into build/ (incrementally) on every install.
install:
	WARMRTC_VENV=$(VENV) scripts/dev-env

lint: install
	$(PYTHON) -m ruff check $(PY_SOURCES)
	$(PYTHON) -m ruff format --check $(PY_SOURCES)
	clang-format --dry-run --Werror $(CPP_SOURCES)
	shellcheck -S warning scripts/check-wheel scripts/dev-env scripts/without-libyuv scripts/py314 \
	  .ci/run
	$(PYTHON) -m mypy.stubtest warmrtc._core --allowlist tests/stubtest-allowlist.txt
	$(PYTHON) -m mypy python/warmrtc

format: install
	$(PYTHON) -m ruff format $(PY_SOURCES)
	$(PYTHON) -m ruff check --fix $(PY_SOURCES)
	clang-format -i $(CPP_SOURCES)

# Unit tests alone (no network namespace needed).
unit: install
	$(PYTHON) -m pytest -q tests --ignore=tests/e2e

# The whole suite, inside the local stack's network namespace (no root needed; see README).
test: install lint stack browser
	$(PYTHON) -m warmrtc stack -- $(PYTHON) -m pytest -q -rA tests

# The documentation site (mkdocs.yml) into build/site, strict: a broken link, a missing page or
# a docstring that refers to nothing fails it. The docs extra of pyproject.toml goes into the
# project's venv, again only when pyproject.toml changes. Nothing is fetched while it builds.
DOCS_STAMP := $(VENV)/.warmrtc-docs
docs: install $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict
	@echo "docs: build/site/index.html"

$(DOCS_STAMP): pyproject.toml
	$(PYTHON) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["docs"]))' \
		> $(VENV)/docs-requirements.txt
	$(PYTHON) -m pip install -q -r $(VENV)/docs-requirements.txt
	touch $@

# The pinned livekit-server, built with Go into the per-user cache once.
stack: install
	$(PYTHON) -m warmrtc stack --install >/dev/null

# The JavaScript of the browser test (Decart's JS SDK, pinned by its lockfile), installed with
# npm before the tests enter the stack's namespace, which has no route to the registry. Again
# only when package.json or the lockfile changed; npm's own cache serves repeated installs.
# No install scripts run (esbuild then starts through its Node.js launcher). Without npm the
# suite still runs, and the browser test fails saying what to install.
BROWSER_DIR := tests/e2e/browser
browser: $(BROWSER_DIR)/node_modules/.installed

$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --prefer-offline --ignore-scripts && touch node_modules/.installed; \
	else \
		echo "make browser: no npm, the browser test will fail (Debian: apt-get install nodejs npm)" >&2; \
	fi

# Release artifacts as the wheels workflow builds them, checked: see scripts/check-wheel.
wheel: install
	PYTHON=$(PYTHON) scripts/check-wheel

# The unit tests on CPython 3.14, in a Debian unstable chroot kept in the per-user cache
# (root only; see scripts/py314). Needs no project venv.
py314:
	scripts/py314

# The same with the end-to-end tests, in the local stack inside the chroot (not in CI).
py314-e2e: install stack
	WARMRTC_LIVEKIT_SERVER="$$($(PYTHON) -m warmrtc stack --install)" scripts/py314 --e2e

# Every benchmark, then one table of every figure beside its target (benchmarks/report.py).
# The official client, the cold-start reference, gets an environment of its own (its
# dependencies are not ours to pin).
OFFICIAL_VENV := .cache/decart-venv
bench: install stack $(OFFICIAL_VENV)/installed
	$(PYTHON) -m warmrtc stack -- $(PYTHON) benchmarks/report.py $(BENCH_ARGS)

$(OFFICIAL_VENV)/installed:
	@echo "bench: installing Decart's official client into $(OFFICIAL_VENV) (once; about a minute)"
	$(PYTHON) -m venv $(OFFICIAL_VENV)
	$(OFFICIAL_VENV)/bin/pip install -q "decart[realtime]==0.2.4" "livekit==1.2.1"
	touch $@

# The demo on the local stack (it starts one itself; no root needed); with DECART_API_KEY set,
# it uses the real service.
demo: install stack
	$(PYTHON) -m warmrtc.cli demo $(DEMO_ARGS)

clean:
	rm -rf build dist wheelhouse .cache/wheel-venv .pytest_cache .ruff_cache .mypy_cache .hypothesis \
		$(BROWSER_DIR)/node_modules
