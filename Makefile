# One command to run the assistant, one to test it. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup serve test eval bench build clean

$(BIN)/summit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (an unpinned torch pulls gigabytes of CUDA)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/summit

setup: $(BIN)/summit

serve: setup
	$(BIN)/summit serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -q

eval: setup
	$(BIN)/summit eval eval/questions.jsonl --mode all

bench: setup
	$(BIN)/summit bench --json artifacts/bench.json

build: setup
	$(BIN)/summit build

clean:
	rm -rf $(VENV) index/current index/builds index/.lock .pytest_cache
