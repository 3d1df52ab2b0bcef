# tensorforge: `make demo` and `make test` are the two commands a user needs.
# Both bootstrap a local .venv from pyproject.toml on first use (and again only
# when pyproject.toml changes), so a fresh machine needs Python 3.11, a C++
# compiler and make, nothing else.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tensorforge-installed
JOBS   ?= 2

.PHONY: all demo test test-slow tables clean distclean venv

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tensorforge demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not slow" --durations=15 tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m slow tests

tables: $(STAMP)
	$(BIN)/tensorforge tables

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
