# The two commands of the README:
#   make book   build the whole book (executes every notebook, renders HTML)
#   make test   lint + the test suite (unit tests + notebook regression)
# and for contributors: make test-fast (< 2 min), make format, make lock (CONTRIBUTING.md)
# Each creates the environment (.venv) first when it is missing or stale.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.topovlm-installed

.PHONY: book test test-fast test-faults lint format lock env bench notebooks regression clean

env: $(STAMP)

$(STAMP): pyproject.toml requirements.lock tools/setup_env.sh tools/ensure_system_packages.sh
	bash tools/setup_env.sh $(PYTHON) $(VENV)
	touch $@

# lint and format check first (seconds), then every test
test: lint
	$(PY) -m pytest

# the tests not marked slow (no model training, no notebook re-execution): under 2 minutes
test-fast: lint
	$(PY) -m pytest -m "not slow" tests

# the property/fault suite alone (damaged caches and checkpoints, kills, bad inputs), fast part
test-faults: $(STAMP)
	$(PY) -m pytest -m "faults and not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# upgrade the pinned versions (requirements.lock) to the newest pyproject.toml allows;
# then `make test` and `make book` say whether the numbers moved
lock:
	bash tools/lock.sh $(PYTHON)

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
