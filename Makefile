# The two commands of the README:
#   make book   build the whole book (executes every notebook, renders HTML)
#   make test   run the test suite (unit tests + notebook regression)
# Each creates the environment (.venv) first when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.topovlm-installed

.PHONY: book test env bench regression clean

env: $(STAMP)

$(STAMP): pyproject.toml tools/setup_env.sh tools/ensure_system_packages.sh
	bash tools/setup_env.sh $(PYTHON) $(VENV)
	touch $@

test: $(STAMP)
	$(PY) -m pytest

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

bench: $(STAMP)
	$(PY) benchmarks/search.py
	$(PY) benchmarks/zigzag.py
	$(PY) benchmarks/extract.py

# after changing a chapter: re-execute the smoke runs that nbval compares against
regression: $(STAMP)
	$(PY) tools/regen_regression.py

clean:
	rm -rf book/_build .pytest_cache
