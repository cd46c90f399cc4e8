# The one task runner; CI (.ci/run) calls these targets.
PY ?= python3
PIP ?= $(PY) -m pip

.PHONY: check install install-system-deps services lint typecheck test test-fast bench demo serve schema clean

# The README's test command: everything a fresh machine needs, then lint, types and every test.
check: install-system-deps services install lint typecheck test

install:
	$(PIP) install --upgrade pip
	# the CPU build of torch (a plain `torch` would pull a multi-GB CUDA build); tests use it
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[all]" --group dev

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
test:
	$(PY) -m pytest -q -p no:cacheprovider

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

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache provmark-demo
