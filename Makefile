# The two commands of the README: `make demo` (set up, tag examples/) and `make test`.
VENV ?= .venv
TAGGER = $(VENV)/bin/tagger

.PHONY: setup demo test bench corpus weights examples

setup:
	@bash scripts/setup.sh

demo:
	@EXTRAS= bash scripts/setup.sh
	$(TAGGER) scan examples --csv instruments.csv

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python scripts/benchmark.py

examples: setup
	$(VENV)/bin/python -m training.make_examples --out examples

weights: setup
	bash training/rebuild.sh
