# Shop: `make run` serves the demo shop, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
STAMP := $(VENV)/.installed

.PHONY: run test lint format install db seed clean bench bench-scale wrk screenshots

# Development: debug mode (plain-http cookies, the console SMS backend and its /dev/phone).
run: export FLASK_DEBUG := 1
run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	@echo "Shop on http://127.0.0.1:5000  (passkeys: open http://localhost:5000; Ctrl-C to stop)"
	$(FLASK) dev-server --host 127.0.0.1 --port 5000

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# SPEC section 8's figures as one JSON summary (about two minutes; not part of `make test`).
bench: $(STAMP) wrk
	$(BIN)/python -m bench.run

# The pages and delivery rounds as the data grows: S (the demo), M and L on SQLite and
# PostgreSQL, one JSON object per database (L takes a while; `make bench-scale SIZES=S,M`
# is quicker). Not part of `make test`.
bench-scale: $(STAMP) wrk
	$(BIN)/python -m bench.scale $(if $(SIZES),--sizes $(SIZES)) $(BENCH_SCALE_ARGS)

wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }

# PNGs of every key page at desktop and phone widths, in Debian's Chromium (docs/screenshots).
screenshots: $(STAMP)
	$(BIN)/python -m tests.screenshots docs/screenshots

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
