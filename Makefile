# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint clean constraints

install: $(STAMP)

# torch==2.13.0 first: it resolves to the CPU wheel here; a bare `torch` would pull a multi-GB CUDA build.
# constraints.txt pins every dependency to the version the tests passed with, so a fresh machine gets those.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# after a dependency change the tests pass with: pin what is installed now (minus the project itself)
constraints:
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^dialogpt' | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

test: install
	$(PY) -m pytest -q -n 2 --durations=15 tests

demo: install
	$(PY) scripts/demo.py $(DEMO_ARGS)

bench: install
	$(PY) bench/extract.py
	$(PY) bench/train.py
	$(PY) bench/generate.py
	$(PY) bench/metrics.py
	$(PY) bench/lora.py

lint: install
	$(PY) -m ruff check dialogpt dialogpt_dataset metrics scripts bench tests

clean:
	rm -rf $(VENV) runs/demo .pytest_cache
