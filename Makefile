# The two commands of the README:
#   make demo   set up, simulate a local archive (two STIS anneal months and example_cam
#               darks), index it, and run the campaign of examples/campaign.yaml over it;
#               simulate COS TIME-TAG exposures and run the lightcurve ingest flow of
#               examples/hstlc.yaml over them
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
	test -f $(DEMO)/hstlc/sim/fuv/truth.json || { \
	    $(BIN)/hstcal simulate --instrument cos_fuv --kind timetag --count 2 --seed 1 \
	        --out $(DEMO)/hstlc/sim/fuv -p model=sinusoid -p period=300 -p amplitude=0.3 && \
	    $(BIN)/hstcal simulate --instrument cos_nuv --kind timetag --count 1 --seed 2 \
	        --out $(DEMO)/hstlc/sim/nuv -p model=flare -p flare_time=400 -p amplitude=4 \
	        -p decay=60 && \
	    mkdir -p $(DEMO)/hstlc/ingest && \
	    cp $(DEMO)/hstlc/sim/fuv/*_*.fits $(DEMO)/hstlc/sim/nuv/*_*.fits $(DEMO)/hstlc/ingest/; }
	$(BIN)/hstcal lightcurve ingest --config examples/hstlc.yaml

test: install
	$(BIN)/python -m pytest

test-all: install
	$(BIN)/python -m pytest -m ""

bench: install
	$(BIN)/python benchmarks/bench_crreject.py
	$(BIN)/python benchmarks/bench_campaign.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
