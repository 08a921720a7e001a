# Two commands do everything: `make demo` (the whole ALIGN recipe on a laptop) and `make test`.
# Both create or refresh .venv with python3 -m venv + pip (uv/poetry would fetch several GB of
# CUDA wheels that pip here takes from local disk), install the project, then run.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test test-fast lint format demo demo-emoji bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider

test-fast: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -p no:cacheprovider -m 'not slow'

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) mling/demo.py --output demo-output

# The second demo, on real drawings named in 100+ languages: fetches the pinned npm packages
# into the cache first (the one step that needs the network; nothing if they are there).
demo-emoji: $(STAMP)
	$(PY) data/emoji_set.py --fetch
	HF_HUB_OFFLINE=1 $(PY) mling/demo_emoji.py --output demo-emoji-output

# Benchmarks run as modules from the repository root, so they share the tests' fixtures; the
# last command lists the generated blocks whose measured code changed since their report's commit.
bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_vocab
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_vocab --corpus udhr --output bench-output/vocab-udhr
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_filter
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_train
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_eval --output bench-output/eval
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_micro_batch
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.bench_loss_memory
	$(PY) -m benchmarks.update_docs
	$(PY) -m benchmarks.update_docs --check

clean:
	rm -rf demo-output demo-emoji-output bench-output
