# Two entry points for a fresh machine (see README):
#   make run   - install everything into .venv/ and start the service
#   make test  - install everything (incl. test tools and headless Chromium) and run the whole suite
#   make unit  - the fast tests only (no models, no browser), under a minute
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit browser bench clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "callassist needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned to the CPU build; otherwise a dependency pulls a multi-GB CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/callassist serve

# Debian's Chromium for the overlay/report browser tests (Playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install Debian chromium; browser tests will fail"; }

lint: install
	$(BIN)/ruff check assist stream tests bench

typecheck: install
	$(BIN)/mypy

# The fast selection, for every change: ~32 CPU seconds (under a minute on a 2-core machine; the
# first run on a machine adds ~35 s to train the adapter tests' engine, cached in $TMPDIR). It skips
# the tests marked `model` (real Whisper and text-encoder models: ASR accuracy, the guidance engine
# with USE, whole-service runs), `browser` (headless Chromium: overlay, supervisor and report pages)
# and `slow` (building a wheel to check what `pip install .` ships). `make test` runs everything.
unit: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q -ra -m "not model and not browser and not slow"

test: install browser
	$(BIN)/ruff check assist stream tests bench
	$(BIN)/mypy
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q -ra

bench: install
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/capacity.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
