# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench bench-deps bench-floors bench-office bench-audit bench-ocr bench-agent bench-report lint system-deps test-deps clean fuzz fuzz-smoke

install: $(STAMP)

# Run-time Debian packages only (a workstation gets no test services); the tests add their own.
system-deps:
	@bash .ci/system-deps.sh .ci/debian-packages.txt

test-deps:
	@bash .ci/system-deps.sh .ci/debian-packages-test.txt

# Benchmark peers only (clamav for bench/clam_bench.py): not installed by `make test` or CI.
bench-deps:
	@bash .ci/system-deps.sh .ci/debian-packages-bench.txt

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

bench: install test-deps bench-deps
	$(BIN)/python bench/run.py
	$(BIN)/python bench/policy_bench.py
	$(BIN)/python bench/rescan_bench.py
	$(BIN)/python bench/verdict_bench.py
	$(BIN)/python bench/office_bench.py
	$(BIN)/python bench/prose_bench.py
	$(BIN)/python bench/floors.py
	$(BIN)/python bench/prefilter_engines.py
	$(BIN)/python bench/report_bench.py
	$(BIN)/python bench/clam_bench.py
	$(BIN)/python bench/scaling_bench.py

bench-floors: install test-deps bench-deps
	$(BIN)/python bench/floors.py

bench-office: install test-deps
	$(BIN)/python bench/office_bench.py

bench-report: install test-deps
	$(BIN)/python bench/report_bench.py

# Issue 14 item 5: AUDIT_SECONDS of 1,000-agent load per backend and of the kill -9 fault (600 for the full run).
AUDIT_SECONDS ?= 60
bench-audit: install test-deps
	$(BIN)/python bench/audit_bench.py
	$(BIN)/python bench/audit_bench.py --agents 1000 --duration $(AUDIT_SECONDS) --rate 500 --batch 10
	$(BIN)/python bench/audit_faults.py --duration $(AUDIT_SECONDS)

bench-ocr: install test-deps
	$(BIN)/python bench/ocr_bench.py

bench-agent: install test-deps
	$(BIN)/python bench/agent_bench.py

lint: install
	$(BIN)/ruff check scanner rules policies agents reports tests bench
	$(BIN)/mypy scanner rules policies reports agents
	$(BIN)/pip freeze --exclude-editable > requirements.lock
	$(BIN)/pip-audit --strict --no-deps --disable-pip -r requirements.lock || { echo "pip-audit failed: a vulnerable dependency, or the advisory service (pypi.org) unreachable - see above"; exit 1; }

# Coverage-guided fuzzing of every parser (atheris); SECONDS is the wall-clock budget on 2 cores.
SECONDS ?= 1500
fuzz: install
	$(BIN)/python -m tests.fuzz.run $(SECONDS)

fuzz-smoke: install
	BAOMI_FUZZ_SMOKE=1 $(BIN)/python -m pytest -q tests/fuzz

clean:
	rm -rf $(VENV) build *.egg-info
