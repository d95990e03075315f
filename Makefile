# Two commands on a fresh machine (see README):
#   make book   set everything up, fetch the data, build the site into _build/html/
#   make test   set everything up, fetch the data, run every test (unit, notebooks, site build)
#
# Offline, point the data fetcher at a local copy: LENET_DATA_MIRROR=/path/to/data make test

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
D2L := d2l==1.0.3
# apt-get as root, through sudo otherwise (only used when chromium is missing)
APT := $(shell [ "$$(id -u)" = 0 ] && echo env DEBIAN_FRONTEND=noninteractive apt-get || echo sudo env DEBIAN_FRONTEND=noninteractive apt-get)

.PHONY: setup data book test unit nbval execute lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@# the browser test (tests/test_site.py) drives Debian's chromium; install it when missing
	command -v chromium >/dev/null || $(APT) install -y -q chromium || ($(APT) update -q && $(APT) install -y -q chromium)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# d2l pins numpy==1.23.5 and friends, which do not install on current Python: no deps.
	$(PY) -m pip install --quiet --no-deps $(D2L)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "from d2l import torch as d2l; import lenet_utils; print('environment ready:', lenet_utils.__version__)"
	touch $@

data: setup
	$(PY) -m lenet_utils fetch

book: data
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "site: _build/html/index.html"

test: data
	$(VENV)/bin/ruff check lenet_utils tests tools
	$(VENV)/bin/ruff check chapters
	$(PY) -m pytest tests/ --nbval chapters/ -v --durations=30

unit: data
	$(PY) -m pytest tests/ -v

nbval: data
	$(PY) -m pytest --nbval chapters/ -v

execute: data
	$(PY) tools/execute_notebooks.py $(NB)

lint: setup
	$(VENV)/bin/ruff check lenet_utils tests tools
	$(VENV)/bin/ruff check chapters

clean:
	rm -rf _build
