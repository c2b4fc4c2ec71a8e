# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-audit bench-ocr bench-agent lint system-deps test-deps clean

install: $(STAMP)

# Run-time Debian packages only (a workstation gets no test services); the tests add their own.
system-deps:
	@bash .ci/system-deps.sh .ci/debian-packages.txt

test-deps:
	@bash .ci/system-deps.sh .ci/debian-packages-test.txt

$(STAMP): setup.cfg pyproject.toml .ci/debian-packages.txt
	@bash .ci/system-deps.sh .ci/debian-packages.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@$(BIN)/python -m compileall -q scanner rules policies agents reports >/dev/null
	@touch $(STAMP)

demo: install
	$(BIN)/baomi demo

test: install test-deps
	$(BIN)/python -m pytest -q tests

bench: install test-deps
	$(BIN)/python bench/run.py
	$(BIN)/python bench/policy_bench.py
	$(BIN)/python bench/rescan_bench.py
	$(BIN)/python bench/verdict_bench.py
	$(BIN)/python bench/prose_bench.py

bench-audit: install test-deps
	$(BIN)/python bench/audit_bench.py

bench-ocr: install test-deps
	$(BIN)/python bench/ocr_bench.py

bench-agent: install test-deps
	$(BIN)/python bench/agent_bench.py

lint: install
	$(BIN)/ruff check scanner rules policies agents reports tests bench
	$(BIN)/mypy scanner rules policies

clean:
	rm -rf $(VENV) build *.egg-info
