# The two commands of the README: `make demo` (set up, tag examples/) and `make test`
# (set up with every extra and the Debian packages the tests use, run the suite: what
# .ci/run calls). A second `make demo` skips apt and pip (scripts/setup.sh's stamp).
VENV ?= .venv
TAGGER = $(VENV)/bin/tagger
export VENV

.PHONY: setup demo test bench corpus weights examples

setup:
	@bash scripts/setup.sh

demo:
	@EXTRAS= bash scripts/setup.sh
	$(TAGGER) scan examples --csv instruments.csv --html report.html

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python scripts/benchmark.py

examples: setup
	$(VENV)/bin/python -m training.make_examples --out examples

weights: setup
	bash training/rebuild.sh
