# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export OPENBLAS_NUM_THREADS := 1

.PHONY: install demo test lint bench clean browser docs

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	# torch first and pinned, so nothing pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: the whole loop on the embedded defaults.
demo: install
	$(BIN)/marquee demo

## Debian's Chromium for the headless browser test (tests/test_web_ui.py). Best-effort:
## a failed install does not stop `make test`; the browser test then skips (fails in CI).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
			|| echo "chromium could not be installed; the browser test will be skipped"; \
	else \
		echo "chromium is missing (as root: apt-get install chromium); the browser test will be skipped"; \
	fi

## The test suite, with lint, types and import contracts first; tests/test_docs.py builds the
## docs site with `mkdocs build --strict` (executing the notebooks) and runs the tutorials.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/mypy core features models training serving experiments catalog_api marquee docsgen
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The docs site in ./site (tests/test_docs.py builds it with --strict inside `make test`).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: install
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf .marquee build site *.egg-info
