# vidlab: `make run` builds the course, `make test` runs every test. Both set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vidlab-installed
MODE ?= auto
# DATA=auto: the kinetics-like preset (64 frames at 224 px) in data/synthetic-k on a machine with a CUDA GPU,
# else the default synthetic set in data/synthetic. Any other value is a dataset folder: used as it is when it holds
# a dataset (any seed, preset or Kinetics subset), else the default synthetic set is generated there.
DATA ?= auto
# SEED: the seed of a synthetic set the data step generates (vidlab data synth --seed)
SEED ?= 0
DATA_DIR = $(if $(filter auto,$(DATA)),$$($(PY) -c 'import torch; print("data/synthetic-k" if torch.cuda.is_available() else "data/synthetic")'),$(DATA))
TEST_ARGS ?=

.PHONY: run test lab data zoo venv clean bench help slides

help:
	@echo "make run    set up .venv, generate the default data, execute every notebook into build/"
	@echo "make test   set up .venv and run all tests (unit tests + every notebook in smoke mode)"
	@echo "make lab    open JupyterLab on the vidlab kernel"
	@echo "make bench  run the benchmark scripts (prints tables)"
	@echo "make slides reveal.js slides of every notebook into build/ (offline; after make run they carry the outputs)"

# The venv is rebuilt when pyproject.toml changes (stale) or when it is missing.
# torch==2.13.0 goes in first so that nothing later pulls a CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (vidlab)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	@d=$(DATA_DIR); \
	  if [ "$(DATA)" != auto ] && { [ -f "$$d/classes.txt" ] || [ -d "$$d/annotations" ]; }; then \
	    echo "using the dataset in $$d"; \
	  else \
	    preset=default; [ "$$d" = data/synthetic-k ] && preset=kinetics-like; \
	    echo "vidlab data synth --preset $$preset --seed $(SEED) --out $$d"; \
	    $(VENV)/bin/vidlab data synth --preset $$preset --seed $(SEED) --out $$d; \
	  fi

# Every *_nano model trained once with its recipe into data/checkpoints (skipped when already trained for that data).
zoo: $(STAMP) data
	$(VENV)/bin/vidlab zoo --data $(DATA_DIR)

run: $(STAMP) data zoo
	$(PY) -m vidlab.course --mode $(MODE) --data $(DATA_DIR) --out build

test: $(STAMP)
	$(PY) -m pytest $(TEST_ARGS)

slides: $(STAMP)
	$(PY) -m vidlab.course --slides --out build

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf build .pytest_cache
