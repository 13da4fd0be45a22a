# Two commands do all the set-up on a fresh machine:
#   make demo   installs into .venv and runs the main demo
#   make test   installs into .venv and runs the whole test suite
PYTHON ?= python3
# an index to take torch from (empty: pip's configured one); see README.md
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test readme lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, so the rest does not pull another build; TORCH_INDEX=URL takes it from that
	# index (https://download.pytorch.org/whl/cpu: the CPU build, not PyPI's CUDA one on Linux)
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# the library's main job: a Distill-and-Compare audit of COMPAS, HTML report in reports/
demo: $(STAMP)
	$(BIN)/python examples/compare_demo.py

# one worker per core (pytest-xdist); each test takes the next free worker (worksteal), so
# the minute-long DDP tests do not leave a worker idle at the end
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal

# every Python snippet of README.md, the slow ones included (minutes)
readme: $(STAMP)
	README_SNIPPETS=all $(BIN)/python -m pytest tests/test_readme.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
