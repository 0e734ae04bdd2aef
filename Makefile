# The two commands of the README:
#   make demo   set up, simulate a local archive (two STIS anneal months and example_cam
#               darks), index it, and run the campaign of examples/campaign.yaml over it
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
	test -f $(DEMO)/archive/stis/anneal_table.yml || $(BIN)/hstcal simulate \
	    --instrument stis_ccd --kind months -p months=2 --seed 1 --out $(DEMO)/archive/stis
	test -f $(DEMO)/archive/example/truth.json || $(BIN)/hstcal simulate \
	    --instrument example_cam --kind dark --count 8 --start 55600 --out $(DEMO)/archive/example
	$(BIN)/hstcal archive index $(DEMO)/archive --database $(DEMO)/products/campaign.sqlite
	$(BIN)/hstcal campaign run examples/campaign.yaml
	$(BIN)/hstcal campaign status examples/campaign.yaml

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m ""

bench: install
	$(BIN)/python benchmarks/bench_crreject.py
	$(BIN)/python benchmarks/bench_campaign.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
