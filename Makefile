# The one task runner; CI (.ci/run) calls these targets.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: check install install-system-deps services lint typecheck test test-ts test-fast leftovers bench demo serve schema screenshots clean

# The README's test command: everything a fresh machine needs, then lint, types and every test.
check: install-system-deps services install lint typecheck test test-ts leftovers

install:
	$(PIP) install --upgrade pip
	# the CPU build of torch (a plain `torch` would pull a multi-GB CUDA build); tests use it
	$(PIP) install torch==2.13.0
	# litellm is left out of `all` (its size and pins) but the suite tests it: installed here
	$(PIP) install -e ".[all,litellm]" --group dev

install-system-deps:
	bash .ci/system-deps

services:
	bash .ci/services

lint:
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench

typecheck:
	$(PY) -m mypy

# The whole suite: unit, integration (SQLite, PostgreSQL, NATS, Go interop), e2e (Chromium).
# A stamp holds the tree's state at the start, so `leftovers` can tell the suite's own litter
# from work in progress.
STAMP := $(or $(TMPDIR),/tmp)/provmark-make-check.stamp
test:
	@git status --porcelain > $(STAMP) 2>/dev/null || true
	$(PY) -m pytest -q -p no:cacheprovider

# The TypeScript client (Node 20+): its own tests, against a real `provmark serve`.
test-ts:
	cd clients/typescript && npm ci --no-audit --no-fund && PROVMARK_PYTHON=$(PY) npm test

# The suite must leave the tree as it found it, and no demo folders in the temp directory.
leftovers:
	@dirty="$$(git status --porcelain 2>/dev/null | diff $(STAMP) - | grep '^[<>]')"; \
	if [ -n "$$dirty" ]; then echo "the tests changed the tree:"; echo "$$dirty"; exit 1; fi
	@left="$$(find $(or $(TMPDIR),/tmp) -maxdepth 1 -name 'provmark-demo-*' -newer $(STAMP) 2>/dev/null)"; \
	if [ -n "$$left" ]; then echo "the tests left demo folders behind:"; echo "$$left"; exit 1; fi

test-fast:
	$(PY) -m pytest -q -x tests/unit

bench:
	$(PIP) install -e ".[all]" --group bench
	$(PY) bench/run_all.py

demo:
	provmark demo --fresh

schema:
	$(PY) -c "from provmark.record import write_json_schema; write_json_schema('docs/schema/record-v2.json')"
	$(PY) -c "import json; from provmark.export.intoto import predicate_schema; open('docs/schema/predicate-provenance-v1.json', 'w').write(json.dumps(predicate_schema(), indent=2, sort_keys=True) + chr(10))"

# docs/img/ from the README's demo (`provmark serve --demo`) in Chromium
screenshots:
	$(PY) tests/e2e/take_screenshots.py docs/img

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache provmark-demo
