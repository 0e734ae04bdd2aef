# The two commands of the README:
#   make demo   set up, simulate one STIS anneal month and build its whole reference-file set
#   make test   set up and run the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PLUGINS := acs cos example nicmos stis wfc3 wfpc2
DEMO   ?= demo

.PHONY: install demo test test-all bench clean

$(BIN)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]' $(addprefix -e plugins/,$(PLUGINS))
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/hstcal simulate --instrument stis_ccd --kind month --seed 1 --out $(DEMO)/raw
	$(BIN)/hstcal run --instrument stis_ccd --stage anneal \
	    --anneal-table $(DEMO)/raw/anneal_table.yml $(DEMO)/raw --out $(DEMO)/products

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m ""

bench: install
	$(BIN)/python benchmarks/bench_crreject.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
