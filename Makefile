# The two commands of the README:
#   make book   build the whole book (executes every notebook, renders HTML)
#   make test   run the test suite (unit tests + notebook regression)
# Each creates the environment (.venv) first when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.topovlm-installed

.PHONY: book test env bench notebooks regression clean

env: $(STAMP)

$(STAMP): pyproject.toml tools/setup_env.sh tools/ensure_system_packages.sh
	bash tools/setup_env.sh $(PYTHON) $(VENV)
	touch $@

test: $(STAMP)
	$(PY) -m pytest

book: $(STAMP)
	$(PY) tools/rerun_failed.py
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	$(PY) tools/check_book.py

bench: $(STAMP)
	$(PY) benchmarks/search.py
	$(PY) benchmarks/zigzag.py
	$(PY) benchmarks/extract.py
	$(PY) benchmarks/skip.py
	$(PY) benchmarks/sleb.py
	$(PY) benchmarks/replay.py

# after changing a chapter: bring its paired notebooks/NN_*.ipynb up to date (jupytext
# pairing; whichever of the pair was edited last wins) ...
notebooks: $(STAMP)
	$(VENV)/bin/jupytext --sync notebooks/[0-9]*.py

# ... and re-execute the smoke runs that nbval compares against
regression: notebooks
	$(PY) tools/regen_regression.py

clean:
	rm -rf book/_build .pytest_cache
