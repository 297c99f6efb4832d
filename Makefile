# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export OPENBLAS_NUM_THREADS := 1

.PHONY: install demo test lint bench clean browser docs web media-tools java bench-tools

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	# torch first and pinned, so nothing pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) web media-tools java

## The web page's players (hls.js, dash.js), pinned in package-lock.json and copied into the
## served static folder (git-ignored): the page fetches nothing from elsewhere at run time.
WEB_VENDOR := catalog_api/web/static/vendor
web: $(WEB_VENDOR)/.installed

$(WEB_VENDOR)/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed for the web player (as root: apt-get install npm)"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(WEB_VENDOR)
	cp node_modules/hls.js/dist/hls.min.js node_modules/dashjs/dist/modern/umd/dash.all.min.js $(WEB_VENDOR)/
	touch $@

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

## Debian's ffmpeg (packaging), nginx (origin and edges) and HAProxy (the balancer of `--replicas`) for
## `marquee media package`, `marquee serve edge` and `marquee serve api|models --replicas N`.
## Best-effort like `browser`: without them the media and replica tests skip (fail in CI).
media-tools:
	@if command -v ffmpeg >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 \
		&& { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg nginx haproxy) \
			|| echo "ffmpeg/nginx/haproxy could not be installed; the media and replica tests will be skipped"; \
	else \
		echo "ffmpeg, nginx or haproxy is missing (as root: apt-get install ffmpeg nginx haproxy); the media and replica tests will be skipped"; \
	fi

## Debian's OpenJDK for the Spark engine (MARQUEE_ENGINE=spark, MLlib ALS; pyspark is a pinned
## Python dependency). Best-effort like `media-tools`: without Java the Spark tests skip (fail in CI).
java:
	@if command -v java >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless) \
			|| echo "openjdk-17-jre-headless could not be installed; the Spark tests will be skipped"; \
	else \
		echo "java is missing (as root: apt-get install openjdk-17-jre-headless); the Spark tests will be skipped"; \
	fi

## The test suite, with lint, types and import contracts first; tests/test_docs.py builds the
## docs site with `mkdocs build --strict` (executing the notebooks) and runs the tutorials.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/mypy core features models training serving experiments catalog_api marquee media docsgen
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The docs site in ./site (tests/test_docs.py builds it with --strict inside `make test`).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Debian's wrk: the load generator bench/bench_serving.py drives the model server and the BentoML
## echo with (16 connections); without it the bench falls back to an httpx client, which measures
## the client more than the servers. Best-effort like `browser`.
bench-tools:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk) \
			|| echo "wrk could not be installed; bench_serving.py will use its slower httpx client"; \
	else \
		echo "wrk is missing (as root: apt-get install wrk); bench_serving.py will use its slower httpx client"; \
	fi

bench: install bench-tools
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf .marquee build site *.egg-info
