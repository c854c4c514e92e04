# The commands of the README:
#   make book   executes every chapter (papermill), validates the executed notebooks (nbval), builds the site
#   make lab    JupyterLab on this machine, the chapters' .md opening as notebooks (Jupytext) with live widgets
#   make test   lint (ruff, the chapters' code included), the book build (it is under test too), and the whole test suite: pytest, nbval on every
#               chapter in the fast profile, the site and a JupyterLab session in headless Chromium (installed if missing)
# Each creates or reuses the virtual environment .venv in the repository.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The CPU build of torch, pinned: an open requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: venv book lab test bench clean data

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[book,dev]" "$(TORCH)"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

data: $(STAMP)
	$(PY) -m stainlib.cli synth --out data/synthetic

book: $(STAMP)
	$(PY) tools/build_book.py

# tools/jupyterlab/overrides.json makes Jupytext's notebook the default viewer of Markdown (Open With > Editor for the text).
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --LabApp.app_settings_dir="$(CURDIR)/tools/jupyterlab" --ServerApp.root_dir="$(CURDIR)" book/intro.md

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check stainlib tests benchmarks tools book
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(PY) tools/build_book.py
	STAINBOOK_REQUIRE_SITE=1 $(PY) -m pytest tests book --nbval-lax -p no:cacheprovider

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf _build .pytest_cache
