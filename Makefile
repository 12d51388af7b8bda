# People and CI run the same targets. `make demo` and `make test` are the two set-up commands.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel: any other torch spec pulls a multi-GB CUDA build on these machines.
TORCH  ?= torch==2.13.0

.PHONY: demo test lint install clean

$(BIN)/fathom: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/fathom

demo: install
	$(BIN)/fathom demo

test: install
	$(BIN)/python -m pytest -q --durations=25
	$(BIN)/ruff check src tests benchmarks

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
