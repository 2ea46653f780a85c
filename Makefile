# Every target installs what it needs into .venv first (Python 3.11+ is the only prerequisite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Everything the demo builds (suite, target, feature cache, results) lives here; a second
# `make demo` reuses it.
export MEMBENCH_HOME ?= $(CURDIR)/.membench

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Pin torch before anything that depends on it: the CPU wheel, not gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/membench demo

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf $(MEMBENCH_HOME) leaderboard_site/build
