# What CNNs See: the two commands of README are `make course` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILD  ?= build
# kernels running at once in `make course` (each its own notebook); JOBS=1 for per-notebook times
JOBS   ?= 2
# auto: download pretrained weights that are not cached; when that fails, each lesson's
# models.load(..., fallback=...) or standin=True says what to show instead (labelled on screen).
COURSE_OFFLINE ?= auto
export COURSE_OFFLINE
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: venv course notebooks slides test doctest unit lint benchmarks fetch clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

## Build and run the course: executes every notebook headless into $(BUILD)/html, builds slides.
course: venv
	$(BIN)/python -m course_utils build --out $(BUILD) --jobs $(JOBS)

## Reveal.js slides of every lesson into slides/ (no execution; uses build/notebooks/ when
## `make course` wrote newer executed copies). They open offline: assets are vendored.
slides: venv
	$(BIN)/python -m course_utils slides --out slides

## Run every test: lint, every docstring example of course_utils, unit tests, and the notebooks
## under nbval (short CI-sized runs).
test: venv
	$(BIN)/ruff check course_utils tests benchmarks tools notebooks/py
	$(MAKE) --no-print-directory doctest
	COURSE_OFFLINE=1 COURSE_QUICK=1 $(BIN)/pytest --nbval-lax -p no:cacheprovider --durations=0 --durations-min=2 tests notebooks

## The docstring examples are a contract: each runs offline on a tiny model, in seconds. A
## separate invocation, so that --doctest-modules never imports the tests or the lessons' .py
## twins in notebooks/py (importing one would run the whole lesson).
doctest: venv
	COURSE_OFFLINE=1 MPLBACKEND=Agg $(BIN)/pytest --doctest-modules -p no:cacheprovider course_utils

unit: venv
	COURSE_OFFLINE=1 $(BIN)/pytest -p no:cacheprovider tests

lint: venv
	$(BIN)/ruff check course_utils tests benchmarks tools notebooks/py

benchmarks: venv
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m benchmarks

## Pre-download all ImageNet weights and datasets (for a seminar room with internet).
fetch: venv
	$(BIN)/python -m course_utils fetch all

clean:
	rm -rf $(BUILD)
