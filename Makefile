# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-audit bench-ocr bench-agent lint system-deps clean

install: $(STAMP)

system-deps:
	@bash .ci/system-deps.sh

$(STAMP): setup.cfg pyproject.toml .ci/debian-packages.txt
	@bash .ci/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	@$(BIN)/python -m compileall -q scanner rules policies agents reports >/dev/null
	@touch $(STAMP)

demo: install
	$(BIN)/baomi demo

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/policy_bench.py

bench-audit: install
	$(BIN)/python bench/audit_bench.py

bench-ocr: install
	$(BIN)/python bench/ocr_bench.py

bench-agent: install
	$(BIN)/python bench/agent_bench.py

lint: install
	$(BIN)/ruff check scanner rules policies agents reports tests bench
	$(BIN)/mypy scanner rules policies

clean:
	rm -rf $(VENV) build *.egg-info
